//! `ldcache explain`: the loader's searches for one program, predicted.

use std::path::{Path, PathBuf};

use ldcache_search::{simulate, CacheMode, Environment, LoaderProfile, Report, Via};
use serde::Serialize;

use crate::common::{interpreter_of, read_elf, Profiles, StoreArgs};

/// Which resolution caches the modelled loader consults.
#[derive(clap::ValueEnum, Clone, Copy, PartialEq, Eq)]
pub enum CacheArg {
    /// A stock glibc: notes are ignored.
    Off,
    /// The patched glibc with the notes the files carry.
    Notes,
    /// The patched glibc with the notes `ldcache embed` would write.
    Computed,
}

#[derive(clap::Args)]
pub struct Args {
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    /// LD_LIBRARY_PATH to assume (default: the current environment's).
    #[arg(long, value_name = "DIRS")]
    library_path: Option<String>,
    /// Assume secure mode (AT_SECURE, as for setuid programs).
    #[arg(long)]
    secure: bool,
    /// The loader to model (default: the file's PT_INTERP, or the system's for its machine).
    #[arg(long, value_name = "LD_SO")]
    loader: Option<PathBuf>,
    /// Which resolution caches the loader consults.
    #[arg(long, value_enum, default_value = "notes")]
    cache: CacheArg,
    #[command(flatten)]
    store: StoreArgs,
    /// Also list every file tried.
    #[arg(long, short)]
    verbose: bool,
    /// The executable (or shared object) to explain.
    file: PathBuf,
}

#[derive(Serialize)]
struct Output<'a> {
    file: &'a Path,
    loader: &'a LoaderProfile,
    #[serde(flatten)]
    report: &'a Report,
}

/// The model's settings for a cache mode.
pub fn cache_mode(cache: CacheArg, store: &StoreArgs) -> CacheMode {
    match cache {
        CacheArg::Off => CacheMode::Off,
        CacheArg::Notes => CacheMode::Present,
        CacheArg::Computed => CacheMode::Computed(store.rules()),
    }
}

pub fn run(args: &Args) -> Result<(), String> {
    let info = read_elf(&args.file)?;
    let interpreter = interpreter_of(&info, args.loader.as_deref());
    let mut profiles = Profiles::default();
    let profile = profiles.get(&interpreter, &info);
    let env = Environment {
        library_path: args
            .library_path
            .clone()
            .or_else(|| std::env::var("LD_LIBRARY_PATH").ok()),
        secure: args.secure,
        cwd: std::env::current_dir().map_err(|e| format!("current directory: {e}"))?,
        cache: cache_mode(args.cache, &args.store),
    };
    let report = simulate(&args.file, profile, &env).map_err(|e| e.to_string())?;
    if args.json {
        let output = Output {
            file: &args.file,
            loader: profile,
            report: &report,
        };
        println!(
            "{}",
            serde_json::to_string_pretty(&output).expect("report serialises")
        );
    } else {
        print_text(&report, profile, args.verbose);
    }
    Ok(())
}

fn via_name(via: Option<Via>) -> &'static str {
    match via {
        Some(Via::Rpath) => "rpath",
        Some(Via::LdLibraryPath) => "ld_library_path",
        Some(Via::Runpath) => "runpath",
        Some(Via::LdSoCache) => "ld_so_cache",
        Some(Via::Default) => "default",
        Some(Via::AlreadyLoaded) => "already_loaded",
        Some(Via::Path) => "path",
        Some(Via::Note) => "note",
        None => "not found",
    }
}

fn print_text(report: &Report, profile: &LoaderProfile, verbose: bool) {
    if !profile.probed {
        println!(
            "note: {} could not be run here; its search directories are guessed",
            profile.interpreter.display()
        );
    }
    for object in &report.objects {
        match &object.note {
            Some(note) => println!("{} (cache note: {note})", object.path),
            None => println!("{}", object.path),
        }
        for lookup in &object.needed {
            let target = lookup.resolved.as_deref().unwrap_or("-");
            let cost = match lookup.failed_lookups {
                0 => String::new(),
                n => format!(", {n} failed lookups"),
            };
            println!(
                "  {} => {target} ({}{cost})",
                lookup.soname,
                via_name(lookup.via)
            );
            if let Some(error) = &lookup.error {
                println!("    error: {error}");
            }
            if verbose {
                for attempt in &lookup.attempts {
                    println!("    tried {} ({:?})", attempt.path, attempt.opened);
                }
            }
        }
    }
    println!("failed lookups: {}", report.failed_lookups);
}
