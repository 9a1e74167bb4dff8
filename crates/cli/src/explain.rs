//! `ldcache explain`: the loader's searches for one program, predicted.

use std::path::{Path, PathBuf};

use ldcache_search::{default_interpreter, simulate, Environment, LoaderProfile, Report, Via};
use serde::Serialize;

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

pub fn run(args: &Args) -> Result<(), String> {
    let data = std::fs::read(&args.file).map_err(|e| format!("{}: {e}", args.file.display()))?;
    let info = ldcache_elf::parse(&data).map_err(|e| format!("{}: {e}", args.file.display()))?;
    let interpreter = match (&args.loader, &info.interpreter) {
        (Some(loader), _) => loader.clone(),
        (None, Some(interp)) => PathBuf::from(interp),
        (None, None) => PathBuf::from(default_interpreter(info.header.machine, info.header.class)),
    };
    let profile = LoaderProfile::for_interpreter(&interpreter, info.header.class);
    let env = Environment {
        library_path: args
            .library_path
            .clone()
            .or_else(|| std::env::var("LD_LIBRARY_PATH").ok()),
        secure: args.secure,
        cwd: std::env::current_dir().map_err(|e| format!("current directory: {e}"))?,
    };
    let report = simulate(&args.file, &profile, &env).map_err(|e| e.to_string())?;
    if args.json {
        let output = Output {
            file: &args.file,
            loader: &profile,
            report: &report,
        };
        println!(
            "{}",
            serde_json::to_string_pretty(&output).expect("report serialises")
        );
    } else {
        print_text(&report, &profile, args.verbose);
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
        println!("{}", object.path);
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
