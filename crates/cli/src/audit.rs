//! `ldcache audit`: how bad is the stat storm of a whole tree, and what notes change.
//!
//! For every dynamically linked executable and library under the given directories, the predicted
//! failing lookups of loading it (its whole dependency closure) three ways: with a stock loader, with
//! the patched loader and the notes the files carry, and with the notes `ldcache embed` would write.

use std::path::PathBuf;

use ldcache_elf::{ElfInfo, Linkage};
use ldcache_search::{simulate, CacheMode, Environment, LoaderProfile};
use rayon::prelude::*;
use serde::Serialize;

use crate::common::{current_dir, interpreter_of, read_elf, worker_pool, Profiles, StoreArgs};
use crate::error::Error;

#[derive(clap::Args)]
pub struct Args {
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    /// How many files the text report lists.
    #[arg(long, default_value_t = 20)]
    limit: usize,
    /// Worker threads (default: one per CPU).
    #[arg(long, short)]
    jobs: Option<usize>,
    #[command(flatten)]
    store: StoreArgs,
    /// Directories (or files) to audit.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
}

/// Failing lookups at start-up under the three loaders.
#[derive(Serialize, Default, Clone, Copy)]
struct Counts {
    stock: u64,
    with_notes: u64,
    with_ldcache: u64,
}

#[derive(Serialize)]
struct FileReport {
    path: PathBuf,
    #[serde(flatten)]
    counts: Counts,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

#[derive(Serialize)]
struct AuditReport {
    files: Vec<FileReport>,
    total: Counts,
}

pub fn run(args: &Args) -> Result<(), Error> {
    let files = dynamic_elf_files(&args.paths)?;
    let mut profiles = Profiles::default();
    let profiled: Vec<(PathBuf, ElfInfo, LoaderProfile)> = files
        .into_iter()
        .map(|(path, info)| {
            let profile = profiles.get(&interpreter_of(&info, None), &info).clone();
            (path, info, profile)
        })
        .collect();
    let cwd = current_dir()?;
    let rules = args.store.rules();
    let pool = worker_pool(args.jobs)?;
    let mut reports: Vec<FileReport> = pool.install(|| {
        profiled
            .par_iter()
            .map(|(path, _, profile)| {
                let run = |cache: CacheMode| {
                    let env = Environment {
                        library_path: None,
                        secure: false,
                        cwd: cwd.clone(),
                        cache,
                    };
                    simulate(path, profile, &env).map(|report| u64::from(report.failed_lookups))
                };
                let counts = run(CacheMode::Off).and_then(|stock| {
                    Ok(Counts {
                        stock,
                        with_notes: run(CacheMode::Present)?,
                        with_ldcache: run(CacheMode::Computed(rules.clone()))?,
                    })
                });
                match counts {
                    Ok(counts) => FileReport {
                        path: path.clone(),
                        counts,
                        error: None,
                    },
                    Err(error) => FileReport {
                        path: path.clone(),
                        counts: Counts::default(),
                        error: Some(error.to_string()),
                    },
                }
            })
            .collect()
    });
    // Worst first; ties in path order, so the report is the same on every run.
    reports.sort_by(|a, b| {
        b.counts
            .stock
            .cmp(&a.counts.stock)
            .then(a.path.cmp(&b.path))
    });
    let total = reports.iter().fold(Counts::default(), |t, r| Counts {
        stock: t.stock + r.counts.stock,
        with_notes: t.with_notes + r.counts.with_notes,
        with_ldcache: t.with_ldcache + r.counts.with_ldcache,
    });
    let report = AuditReport {
        files: reports,
        total,
    };
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).expect("serialises")
        );
    } else {
        print_text(&report, args.limit);
    }
    Ok(())
}

/// Every regular file under `paths` (as `embed` finds them: each inode once, in path order) that
/// is a dynamically linked ELF file. Files the reader rejects (not ELF, or not readable as such)
/// are not programs the loader could start either.
fn dynamic_elf_files(paths: &[PathBuf]) -> Result<Vec<(PathBuf, ElfInfo)>, Error> {
    let found = crate::walk::regular_files(paths)?
        .into_iter()
        .filter_map(|file| {
            let info = read_elf(&file.path).ok()?;
            (info.linkage == Linkage::Dynamic).then_some((file.path, info))
        })
        .collect();
    Ok(found)
}

fn print_text(report: &AuditReport, limit: usize) {
    println!(
        "{:>8} {:>10} {:>12}  file",
        "stock", "with notes", "with ldcache"
    );
    for file in report.files.iter().take(limit) {
        match &file.error {
            Some(error) => println!(
                "{:>8} {:>10} {:>12}  {} ({error})",
                "-",
                "-",
                "-",
                file.path.display()
            ),
            None => println!(
                "{:>8} {:>10} {:>12}  {}",
                file.counts.stock,
                file.counts.with_notes,
                file.counts.with_ldcache,
                file.path.display()
            ),
        }
    }
    if report.files.len() > limit {
        println!("... {} more files", report.files.len() - limit);
    }
    let t = report.total;
    println!(
        "{:>8} {:>10} {:>12}  total failing lookups over {} files",
        t.stock,
        t.with_notes,
        t.with_ldcache,
        report.files.len()
    );
}
