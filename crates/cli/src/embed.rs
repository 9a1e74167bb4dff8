//! `ldcache embed` and `ldcache strip`: write (or remove) the resolution-cache notes of every ELF
//! file in a tree, in parallel, each file at most once and only when something changes.

use std::collections::BTreeMap;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use ldcache_elf::{ElfInfo, Linkage, ET_DYN, ET_EXEC};
use ldcache_inject::{rewrite_into, Edit, Output};
use ldcache_note::Rules;
use rayon::prelude::*;
use serde::Serialize;

use crate::common::{worker_pool, StoreArgs};
use crate::copy::Copy;
use crate::error::Error;
use crate::mapped::Mapped;
use crate::refusal::Kind;
use crate::replace::{Failure, Original};
use crate::walk::{regular_files, Found};

#[derive(clap::Args)]
pub struct EmbedArgs {
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
    /// Worker threads (default: one per CPU).
    #[arg(long, short)]
    jobs: Option<usize>,
    /// Exit non-zero when a file had to be refused.
    #[arg(long)]
    strict: bool,
    #[command(flatten)]
    store: StoreArgs,
    /// Files and directories to process.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
}

#[derive(clap::Args)]
pub struct StripArgs {
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
    /// Worker threads (default: one per CPU).
    #[arg(long, short)]
    jobs: Option<usize>,
    /// Files and directories to process.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
}

/// What happened to one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The note was written (or replaced).
    Cached,
    /// A note was removed (`strip`, or `embed` on a file with nothing left to cache).
    Removed,
    /// The file already was as it should be: not written.
    Unchanged,
    Skipped(&'static str),
    Refused(Kind, String),
}

#[derive(Serialize, Default)]
pub struct Summary {
    files: usize,
    cached: usize,
    removed: usize,
    unchanged: usize,
    skipped: usize,
    skipped_reasons: BTreeMap<&'static str, usize>,
    refused: Vec<Refused>,
    refused_kinds: BTreeMap<Kind, usize>,
    errors: Vec<Failed>,
    seconds: f64,
}

#[derive(Serialize)]
struct Refused {
    path: PathBuf,
    kind: Kind,
    reason: String,
}

#[derive(Serialize)]
struct Failed {
    path: PathBuf,
    reason: String,
}

pub fn run_embed(args: &EmbedArgs) -> Result<(), Error> {
    let rules = args.store.rules();
    let summary = process(&args.paths, args.jobs, |found| embed_file(found, &rules))?;
    report(&summary, args.json, Command::Embed);
    finish(&summary, args.strict)
}

pub fn run_strip(args: &StripArgs) -> Result<(), Error> {
    let summary = process(&args.paths, args.jobs, strip_file)?;
    report(&summary, args.json, Command::Strip);
    finish(&summary, false)
}

pub fn finish(summary: &Summary, strict: bool) -> Result<(), Error> {
    if !summary.errors.is_empty() {
        return Err(Error::Incomplete(format!(
            "{} files could not be read or written",
            summary.errors.len()
        )));
    }
    if strict && !summary.refused.is_empty() {
        return Err(Error::Incomplete(format!(
            "{} files refused",
            summary.refused.len()
        )));
    }
    Ok(())
}

pub fn process(
    paths: &[PathBuf],
    jobs: Option<usize>,
    each: impl Fn(&Found) -> io::Result<Outcome> + Sync,
) -> Result<Summary, Error> {
    let start = Instant::now();
    let files = regular_files(paths)?;
    let pool = worker_pool(jobs)?;
    let outcomes: Vec<(PathBuf, io::Result<Outcome>)> = pool.install(|| {
        files
            .par_iter()
            .map(|found| (found.path.clone(), each(found)))
            .collect()
    });
    let mut summary = Summary {
        files: files.len(),
        ..Summary::default()
    };
    for (path, outcome) in outcomes {
        match outcome {
            Ok(Outcome::Cached) => summary.cached += 1,
            Ok(Outcome::Removed) => summary.removed += 1,
            Ok(Outcome::Unchanged) => summary.unchanged += 1,
            Ok(Outcome::Skipped(reason)) => {
                summary.skipped += 1;
                *summary.skipped_reasons.entry(reason).or_default() += 1;
            }
            Ok(Outcome::Refused(kind, reason)) => {
                *summary.refused_kinds.entry(kind).or_default() += 1;
                summary.refused.push(Refused { path, kind, reason });
            }
            Err(error) => summary.errors.push(Failed {
                path,
                reason: error.to_string(),
            }),
        }
    }
    summary.seconds = (start.elapsed().as_secs_f64() * 1000.0).round() / 1000.0;
    Ok(summary)
}

/// Which command a summary is of: what it counts as done.
#[derive(Clone, Copy)]
pub enum Command {
    Embed,
    Strip,
}

pub fn report(summary: &Summary, json: bool, command: Command) {
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(summary).expect("serialises")
        );
        return;
    }
    for refused in &summary.refused {
        eprintln!(
            "ldcache: refused {}: {}",
            refused.path.display(),
            refused.reason
        );
    }
    for error in &summary.errors {
        eprintln!("ldcache: {}: {}", error.path.display(), error.reason);
    }
    let reasons = |counts: Vec<(String, usize)>| -> String {
        if counts.is_empty() {
            return String::new();
        }
        let list: Vec<String> = counts.iter().map(|(r, n)| format!("{n} {r}")).collect();
        format!(" ({})", list.join(", "))
    };
    let skipped = reasons(
        summary
            .skipped_reasons
            .iter()
            .map(|(r, n)| (r.to_string(), *n))
            .collect(),
    );
    let refused = reasons(
        summary
            .refused_kinds
            .iter()
            .map(|(kind, n)| (kind.words().to_string(), *n))
            .collect(),
    );
    let (done_count, done, other) = match command {
        Command::Embed => (
            summary.cached,
            "cached",
            format!(", {} removed", summary.removed),
        ),
        Command::Strip => (summary.removed, "removed", String::new()),
    };
    eprintln!(
        "ldcache: {} files: {done_count} {done}{other}, {} unchanged, {} skipped{skipped}, {} refused{refused}, {:.2} s",
        summary.files,
        summary.unchanged,
        summary.skipped,
        summary.refused.len(),
        summary.seconds
    );
}

/// A regular file that starts with the ELF magic, opened, and its bytes; otherwise why it is
/// skipped. Mapped, not read: most of a file's bytes are never looked at.
fn read_elf(path: &Path) -> io::Result<Result<(Original, Mapped), Outcome>> {
    let original = match Original::open(path) {
        Ok(Some(original)) => original,
        Ok(None) => return Ok(Err(Outcome::Skipped("not ELF"))),
        // Removed since the tree was walked (another process at work on it).
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            return Ok(Err(Outcome::Skipped("gone")))
        }
        Err(error) => return Err(error),
    };
    let mut magic = [0u8; 4];
    if original.file().read_at(&mut magic, 0)? < 4 || magic != *b"\x7fELF" {
        return Ok(Err(Outcome::Skipped("not ELF")));
    }
    let map = Mapped::of(original.file())?;
    Ok(Ok((original, map)))
}

/// Why a readable ELF file takes no note, if it does not.
fn skip_reason(info: &ElfInfo) -> Option<&'static str> {
    match info.linkage {
        Linkage::Relocatable => Some("relocatable"),
        Linkage::Static | Linkage::StaticPie => Some("static"),
        Linkage::SeparateDebug => Some("separate debug file"),
        Linkage::Dynamic if ![ET_EXEC, ET_DYN].contains(&info.header.e_type) => {
            Some("not loadable")
        }
        Linkage::Dynamic if info.dynamic.needed.is_empty() => Some("no DT_NEEDED"),
        Linkage::Dynamic if info.search_path().is_none() => Some("no search path"),
        Linkage::Dynamic => None,
    }
}

pub fn embed_file(found: &Found, rules: &Rules) -> io::Result<Outcome> {
    let (original, data) = match read_elf(&found.path)? {
        Ok(opened) => opened,
        Err(skipped) => return Ok(skipped),
    };
    let outcome = embed_mapped(found, &original, &data, rules)?;
    settled(&original, outcome)
}

fn embed_mapped(
    found: &Found,
    original: &Original,
    data: &[u8],
    rules: &Rules,
) -> io::Result<Outcome> {
    let info = match ldcache_elf::parse(data) {
        Ok(info) => info,
        Err(error) => {
            return Ok(Outcome::Refused(
                Kind::Unreadable,
                format!("unreadable ELF: {error}"),
            ))
        }
    };
    let noted = has_note(&info);
    let payload = match skip_reason(&info) {
        Some(reason) if !noted => return Ok(Outcome::Skipped(reason)),
        Some(_) => None,
        None => ldcache_note::compute(&info, rules).map(|c| c.section(info.header.endian)),
    };
    if payload.is_none() && !noted {
        return Ok(Outcome::Skipped("nothing to cache"));
    }
    let done = if payload.is_some() {
        Outcome::Cached
    } else {
        Outcome::Removed
    };
    apply(found, original, data, payload.as_deref(), done)
}

pub fn strip_file(found: &Found) -> io::Result<Outcome> {
    let (original, data) = match read_elf(&found.path)? {
        Ok(opened) => opened,
        Err(skipped) => return Ok(skipped),
    };
    let outcome = if ldcache_elf::parse(&data).is_ok_and(|info| has_note(&info)) {
        apply(found, &original, &data, None, Outcome::Removed)?
    } else {
        Outcome::Unchanged
    };
    settled(&original, outcome)
}

/// What was decided from a file's bytes holds only if they did not change while being read (a
/// truncation reads as zeros, see `sigbus`): a refusal otherwise. A file that was replaced was
/// checked before the exchange.
fn settled(original: &Original, outcome: Outcome) -> io::Result<Outcome> {
    if matches!(outcome, Outcome::Cached | Outcome::Removed) {
        return Ok(outcome);
    }
    Ok(match original.change()? {
        Some(change) => Outcome::Refused(Kind::Changed, change.to_string()),
        None => outcome,
    })
}

/// Whether the file carries a resolution-cache note (of any writer).
fn has_note(info: &ElfInfo) -> bool {
    info.notes_of(ldcache_elf::NOTE_OWNER_NIXOS, ldcache_elf::NT_NIXOS_LDCACHE)
        .next()
        .is_some()
}

fn apply(
    found: &Found,
    original: &Original,
    data: &[u8],
    payload: Option<&[u8]>,
    done: Outcome,
) -> io::Result<Outcome> {
    // No rewrite grows a file by more than its own length (everything it may move or append
    // again, once) plus the notes and a few headers: room enough that the copy never moves.
    let room = data.len() + payload.map_or(0, <[u8]>::len) + 4096;
    let copy =
        || Copy::of(original.file(), data.len(), room).unwrap_or_else(|_| Copy::copy_of(data));
    match rewrite_into(data, payload, copy) {
        Ok(None) => Ok(Outcome::Unchanged),
        Ok(Some(new)) => {
            let edit = Edit::within(data, &new.bytes, &new.written);
            match original.replace(&found.path, &found.links, &edit) {
                Ok(()) => Ok(done),
                Err(Failure::Refused(kind, reason)) => Ok(Outcome::Refused(kind, reason)),
                Err(Failure::Io(error)) => Err(error),
            }
        }
        Err(refusal) => Ok(Outcome::Refused(
            refusal.kind().into(),
            refusal.reason().to_string(),
        )),
    }
}
