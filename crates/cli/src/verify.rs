//! `ldcache verify`: the injector's oracle on two files, for scripts and corpus tests.

use std::path::PathBuf;

use ldcache_note::Present;

use crate::common::map_regular;
use crate::error::Error;

#[derive(clap::Args)]
pub struct Args {
    /// The file before `ldcache embed` or `strip`.
    original: PathBuf,
    /// The same file after.
    rewritten: PathBuf,
}

/// Checks that the rewritten file differs from the original only where the injector may change it,
/// and that a note it carries decodes.
pub fn run(args: &Args) -> Result<(), Error> {
    let path = &args.rewritten;
    let (old, new) = (map_regular(&args.original)?, map_regular(path)?);
    if *old != *new {
        ldcache_inject::check::check(&old, &new).map_err(|why| Error::Differs {
            path: path.clone(),
            why,
        })?;
    }
    let info = ldcache_elf::parse(&new).map_err(|error| Error::Elf {
        path: path.clone(),
        error,
    })?;
    let note = |error: String| Error::Note {
        path: path.clone(),
        error,
    };
    if let Some(present) = Present::read(&info) {
        present.cache.map_err(|e| note(e.to_string()))?;
        if let Some(fingerprint) = present.fingerprint {
            fingerprint.map_err(|e| note(e.to_string()))?;
        }
    }
    Ok(())
}
