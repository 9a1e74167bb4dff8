//! `ldcache explain`: the loader's searches for one program, predicted.

use std::path::{Path, PathBuf};

use ldcache_search::{simulate, CacheMode, Environment, LoaderProfile, Report, Via};
use serde::Serialize;

use crate::common::{current_dir, interpreter_of, read_elf, Profiles, StoreArgs};
use crate::error::Error;

/// Which resolution caches the modelled loader consults.
#[derive(clap::ValueEnum, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
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
    environment: &'a Assumed,
    #[serde(flatten)]
    report: &'a Report,
}

/// What the model assumed of the process: said in every output, since it changes the answer
/// (`cargo run` alone sets LD_LIBRARY_PATH to its own directories).
#[derive(Serialize)]
struct Assumed {
    library_path: Option<String>,
    library_path_from: Source,
    secure: bool,
    cache: CacheArg,
}

/// Where LD_LIBRARY_PATH came from.
#[derive(Serialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum Source {
    /// `--library-path`.
    Option,
    Environment,
    None,
}

impl Assumed {
    fn of(args: &Args) -> Assumed {
        let (library_path, from) = match (&args.library_path, std::env::var("LD_LIBRARY_PATH")) {
            (Some(option), _) => (Some(option.clone()), Source::Option),
            (None, Ok(value)) => (Some(value), Source::Environment),
            (None, Err(_)) => (None, Source::None),
        };
        Assumed {
            // glibc ignores an empty LD_LIBRARY_PATH.
            library_path: library_path.filter(|dirs| !dirs.is_empty()),
            library_path_from: from,
            secure: args.secure,
            cache: args.cache,
        }
    }

    /// One line for the text output.
    fn line(&self) -> String {
        let library_path = match (&self.library_path, self.library_path_from) {
            (Some(dirs), Source::Environment) => format!(
                "LD_LIBRARY_PATH={dirs} (from the environment; --library-path '' leaves it out)"
            ),
            (Some(dirs), _) => format!("LD_LIBRARY_PATH={dirs} (--library-path)"),
            (None, _) => "no LD_LIBRARY_PATH".to_string(),
        };
        let secure = if self.secure { ", secure mode" } else { "" };
        let cache = match self.cache {
            CacheArg::Off => "notes ignored (a stock loader)",
            CacheArg::Notes => "the files' notes read",
            CacheArg::Computed => "the notes `ldcache embed` would write read",
        };
        format!("assuming: {library_path}{secure}; {cache}")
    }
}

/// The model's settings for a cache mode.
pub fn cache_mode(cache: CacheArg, store: &StoreArgs) -> CacheMode {
    match cache {
        CacheArg::Off => CacheMode::Off,
        CacheArg::Notes => CacheMode::Present,
        CacheArg::Computed => CacheMode::Computed(store.rules()),
    }
}

pub fn run(args: &Args) -> Result<(), Error> {
    let info = read_elf(&args.file)?;
    let interpreter = interpreter_of(&info, args.loader.as_deref());
    let mut profiles = Profiles::default();
    let profile = profiles.get(&interpreter, &info);
    let assumed = Assumed::of(args);
    let env = Environment {
        library_path: assumed.library_path.clone(),
        secure: args.secure,
        cwd: current_dir()?,
        cache: cache_mode(args.cache, &args.store),
    };
    let report = simulate(&args.file, profile, &env).map_err(Error::Model)?;
    if args.json {
        let output = Output {
            file: &args.file,
            loader: profile,
            environment: &assumed,
            report: &report,
        };
        println!(
            "{}",
            serde_json::to_string_pretty(&output).expect("report serialises")
        );
    } else {
        println!("{}", assumed.line());
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
