//! A model of glibc's shared-library search.
//!
//! Given an executable and a description of its loader ([`LoaderProfile`]), [`simulate`] replays the
//! loader's start-up: the objects in load order, and for every `DT_NEEDED` name the search steps
//! (`DT_RPATH` chain, `LD_LIBRARY_PATH`, `DT_RUNPATH`, ld.so.cache, default directories), the files tried,
//! where it resolves and how many system calls failed on the way. It opens the same files the loader
//! would and reads the same headers, so its answer can be compared with `LD_DEBUG=libs` and `strace`.
//!
//! Not modelled: `LD_PRELOAD`, audit modules, `dlopen` at run time, legacy hwcaps entries of ld.so.cache.

#![forbid(unsafe_code)]

mod candidate;
mod ldsocache;
mod paths;
mod process;
mod profile;
mod report;

pub use candidate::Opened;
pub use ldsocache::{CacheError, LdSoCache};
pub use paths::{decompose, expand, Tokens};
pub use process::{simulate, CacheMode, Environment};
pub use profile::{default_interpreter, LoaderProfile};
pub use report::{Attempt, LoadedObject, Lookup, Report, Via};

use std::fmt;
use std::path::Path;

/// Why a simulation could not start.
#[derive(Debug)]
pub struct Error(String);

impl Error {
    fn msg(message: String) -> Self {
        Error(message)
    }

    fn io(path: &Path, error: std::io::Error) -> Self {
        Error(format!("{}: {error}", path.display()))
    }

    fn elf(path: &Path, error: ldcache_elf::Error) -> Self {
        Error(format!("{}: {error}", path.display()))
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}
