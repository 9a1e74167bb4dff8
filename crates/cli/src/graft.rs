//! `ldcache graft`: one step of grafting a closure onto a patched glibc without rebuilding it
//! (`nix/graft.nix`). It copies one store path to a new one of the same name length, replacing
//! the store paths it names by their grafted copies (in file contents, symbolic link targets and
//! file names; its own path by the new one), then writes the notes of the copy's ELF files as
//! `embed` does, now that their search paths name the grafted directories.
//!
//! Replacing a store path by one of the same length keeps every offset in every file, as Nix's
//! own `replaceDependencies` does. What is replaced is a store path's hash, the 32 characters
//! Nix scans files for to find their references: an occurrence without the name after it would
//! otherwise keep a reference to the old path. A note written before the graft is then stale (its
//! fingerprint is of the old search path) and is rewritten.

use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use aho_corasick::{AhoCorasick, MatchKind};
use serde::Serialize;

use crate::common::StoreArgs;
use crate::embed::{self, Command};
use crate::error::Error;

#[derive(clap::Args)]
pub struct Args {
    /// A store path the copy must name instead of another: OLD=NEW, both paths (or both base
    /// names) of the same length. Repeatable. SOURCE itself is always replaced by OUT.
    #[arg(long = "replace", value_name = "OLD=NEW", value_parser = replacement)]
    replace: Vec<(PathBuf, PathBuf)>,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
    /// Worker threads for the notes (default: one per CPU).
    #[arg(long, short)]
    jobs: Option<usize>,
    #[command(flatten)]
    store: StoreArgs,
    /// The store path to copy.
    source: PathBuf,
    /// The new store path (it must not exist).
    out: PathBuf,
}

fn replacement(value: &str) -> Result<(PathBuf, PathBuf), String> {
    let (old, new) = value.split_once('=').ok_or("expected OLD=NEW")?;
    Ok((PathBuf::from(old), PathBuf::from(new)))
}

/// What the copy held.
#[derive(Serialize, Default)]
struct Copied {
    files: usize,
    /// Files whose bytes named a replaced store path.
    rewritten: usize,
    symlinks: usize,
    directories: usize,
}

pub fn run(args: &Args) -> Result<(), Error> {
    let pairs = replacements(args)?;
    if args.out.symlink_metadata().is_ok() {
        return Err(Error::Other(format!("{} exists", args.out.display())));
    }
    let rewriter = Rewriter::new(&pairs);
    let copied = match copy_tree(&args.source, &args.out, &rewriter) {
        Ok(copied) => copied,
        Err(error) => {
            // Nothing half-made is left at OUT.
            let _ = std::fs::remove_dir_all(&args.out).or_else(|_| std::fs::remove_file(&args.out));
            return Err(error);
        }
    };
    let rules = args.store.rules();
    let summary = embed::process(std::slice::from_ref(&args.out), args.jobs, |found| {
        embed::embed_file(found, &rules)
    })?;
    if args.json {
        let both = serde_json::json!({ "copied": copied, "notes": summary });
        println!(
            "{}",
            serde_json::to_string_pretty(&both).expect("serialises")
        );
    } else {
        eprintln!(
            "ldcache: copied {} files ({} rewritten), {} symbolic links, {} directories",
            copied.files, copied.rewritten, copied.symlinks, copied.directories
        );
        embed::report(&summary, false, Command::Embed);
    }
    embed::finish(&summary, false)
}

/// What to replace (a store path's hash, or its base name) and what replaces it.
type Pair = (Vec<u8>, Vec<u8>);

/// The strings to replace, SOURCE's by OUT's first: the hashes of two store paths of one name,
/// else their base names, of one length.
fn replacements(args: &Args) -> Result<Vec<Pair>, Error> {
    let mut pairs = Vec::new();
    for (old, new) in std::iter::once((&args.source, &args.out))
        .chain(args.replace.iter().map(|(old, new)| (old, new)))
    {
        let name = |path: &Path| -> Result<Vec<u8>, Error> {
            path.file_name()
                .map(|name| name.as_bytes().to_vec())
                .ok_or_else(|| Error::Other(format!("{}: not a store path", path.display())))
        };
        let (old_name, new_name) = (name(old)?, name(new)?);
        if old_name.len() != new_name.len() {
            return Err(Error::Other(format!(
                "{} and {} differ in length: a graft keeps every offset",
                old.display(),
                new.display()
            )));
        }
        if old_name == new_name {
            continue;
        }
        let (old_hash, new_hash) = (store_hash(&old_name), store_hash(&new_name));
        match (old_hash, new_hash) {
            (Some(old_hash), Some(new_hash)) if old_name[HASH..] == new_name[HASH..] => {
                pairs.push((old_hash.to_vec(), new_hash.to_vec()))
            }
            _ => pairs.push((old_name, new_name)),
        }
    }
    Ok(pairs)
}

/// Length of a store path's hash, before `-name`.
const HASH: usize = 32;

/// The hash of a store path's base name (`<hash>-<name>`), if it has that shape.
fn store_hash(name: &[u8]) -> Option<&[u8]> {
    (name.len() > HASH + 1 && name[HASH] == b'-').then(|| &name[..HASH])
}

/// Replaces every old name by its new one, in one pass over the bytes.
struct Rewriter {
    finder: Option<AhoCorasick>,
    news: Vec<Vec<u8>>,
}

impl Rewriter {
    fn new(pairs: &[Pair]) -> Rewriter {
        let olds: Vec<&[u8]> = pairs.iter().map(|(old, _)| old.as_slice()).collect();
        let finder = (!olds.is_empty()).then(|| {
            AhoCorasick::builder()
                .match_kind(MatchKind::LeftmostLongest)
                .build(&olds)
                .expect("a few store path names make a small automaton")
        });
        Rewriter {
            finder,
            news: pairs.iter().map(|(_, new)| new.clone()).collect(),
        }
    }

    /// The bytes with every old name replaced; `None` when none occurs.
    fn rewrite(&self, bytes: &[u8]) -> Option<Vec<u8>> {
        let finder = self.finder.as_ref()?;
        finder.find(bytes)?;
        Some(finder.replace_all_bytes(bytes, &self.news))
    }

    fn path(&self, path: &Path) -> PathBuf {
        let bytes = path.as_os_str().as_bytes();
        self.rewrite(bytes).map_or_else(
            || path.to_path_buf(),
            |new| std::ffi::OsString::from_vec(new).into(),
        )
    }
}

/// Copies SOURCE (a directory, a file or a symbolic link) to OUT, rewriting names, link targets
/// and file contents. Files keep their permission bits, and like directories are writable by their
/// owner, as a build's output is, so that the notes can be written (Nix makes the store path
/// read-only afterwards).
fn copy_tree(source: &Path, out: &Path, rewriter: &Rewriter) -> Result<Copied, Error> {
    let mut copied = Copied::default();
    for entry in walkdir::WalkDir::new(source)
        .follow_links(false)
        .sort_by_file_name()
    {
        let entry = entry.map_err(|error| Error::Other(error.to_string()))?;
        let relative = entry.path().strip_prefix(source).expect("under SOURCE");
        let target = if relative.as_os_str().is_empty() {
            out.to_path_buf()
        } else {
            out.join(rewriter.path(relative))
        };
        let kind = entry.file_type();
        if kind.is_dir() {
            std::fs::create_dir(&target).map_err(Error::io(&target))?;
            copied.directories += 1;
        } else if kind.is_symlink() {
            let link = std::fs::read_link(entry.path()).map_err(Error::io(entry.path()))?;
            std::os::unix::fs::symlink(rewriter.path(&link), &target)
                .map_err(Error::io(&target))?;
            copied.symlinks += 1;
        } else if kind.is_file() {
            let bytes = std::fs::read(entry.path()).map_err(Error::io(entry.path()))?;
            let mode = entry
                .metadata()
                .map_err(|error| Error::Other(error.to_string()))?
                .permissions()
                .mode()
                & 0o777;
            let rewritten = rewriter.rewrite(&bytes);
            copied.rewritten += usize::from(rewritten.is_some());
            std::fs::write(&target, rewritten.as_deref().unwrap_or(&bytes))
                .map_err(Error::io(&target))?;
            std::fs::set_permissions(&target, std::fs::Permissions::from_mode(mode | 0o200))
                .map_err(Error::io(&target))?;
            copied.files += 1;
        } else {
            return Err(Error::Other(format!(
                "{}: not a file, directory or symbolic link (a store path holds no other)",
                entry.path().display()
            )));
        }
    }
    Ok(copied)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_every_name_in_one_pass_and_nothing_else() {
        let rewriter = Rewriter::new(&[
            (b"aaaa-glibc".to_vec(), b"bbbb-glibc".to_vec()),
            (b"cccc-zlib".to_vec(), b"dddd-zlib".to_vec()),
        ]);
        assert_eq!(
            rewriter.rewrite(b"/s/aaaa-glibc/lib:/s/cccc-zlib/lib:/s/aaaa-glibcx"),
            Some(b"/s/bbbb-glibc/lib:/s/dddd-zlib/lib:/s/bbbb-glibcx".to_vec())
        );
        assert_eq!(rewriter.rewrite(b"/s/eeee-glibc/lib"), None);
        assert_eq!(Rewriter::new(&[]).rewrite(b"aaaa-glibc"), None);
    }
}
