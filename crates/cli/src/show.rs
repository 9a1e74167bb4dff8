//! `ldcache show`: the resolution cache an object carries, and whether it is current.

use std::path::PathBuf;

use ldcache_note::{Fingerprint, Present};
use serde::Serialize;

use crate::common::read_elf;
use crate::error::Error;

#[derive(clap::Args)]
pub struct Args {
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    /// The ELF file.
    file: PathBuf,
}

#[derive(Serialize)]
struct Shown {
    file: PathBuf,
    /// Whether the file has a cache note at all.
    note: bool,
    entries: Vec<ShownEntry>,
    fingerprint: Option<Fingerprint>,
    /// The note describes the file as it is now (see `Present::current`).
    current: bool,
    /// Why it is not current, or what is wrong with it.
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

#[derive(Serialize)]
struct ShownEntry {
    soname: String,
    paths: Vec<String>,
}

pub fn run(args: &Args) -> Result<(), Error> {
    let info = read_elf(&args.file)?;
    let shown = match Present::read(&info) {
        None => Shown {
            file: args.file.clone(),
            note: false,
            entries: Vec::new(),
            fingerprint: None,
            current: false,
            reason: Some("no resolution-cache note".into()),
        },
        Some(present) => {
            let entries = match &present.cache {
                Ok(cache) => cache
                    .entries
                    .iter()
                    .map(|entry| ShownEntry {
                        soname: entry.soname.clone(),
                        paths: entry.places.iter().map(ToString::to_string).collect(),
                    })
                    .collect(),
                Err(_) => Vec::new(),
            };
            let current = present.current(&info);
            Shown {
                file: args.file.clone(),
                note: true,
                entries,
                fingerprint: present.fingerprint.and_then(Result::ok),
                current: current.is_ok(),
                reason: current.err(),
            }
        }
    };
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&shown).expect("serialises")
        );
        return Ok(());
    }
    println!("{}", shown.file.display());
    if !shown.note {
        println!("  no resolution-cache note");
        return Ok(());
    }
    for entry in &shown.entries {
        println!("  {}: {}", entry.soname, entry.paths.join(" "));
    }
    match &shown.fingerprint {
        Some(fp) => println!(
            "  computed from {:?} ({} bytes, xxh64 {:016x})",
            fp.tag, fp.length, fp.hash
        ),
        None => println!("  no fingerprint (written by another tool)"),
    }
    match &shown.reason {
        None => println!("  current"),
        Some(reason) => println!("  not current: {reason}"),
    }
    Ok(())
}
