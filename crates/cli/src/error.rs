//! What stops a command: one type for every command, turned into a message and an exit status in
//! `main` alone. (A file `embed` or `strip` leaves alone is no error: see `refusal.rs`.)

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

#[derive(Debug)]
pub enum Error {
    /// A file or directory could not be found, opened, read, mapped or written.
    Io { path: PathBuf, error: io::Error },
    /// A file the ELF reader does not take.
    Elf {
        path: PathBuf,
        error: ldcache_elf::Error,
    },
    /// A resolution-cache note that does not decode.
    Note { path: PathBuf, error: String },
    /// A rewritten file differs from its original where it must not (`verify`).
    Differs { path: PathBuf, why: String },
    /// The loader model could not start.
    Model(ldcache_search::Error),
    /// `embed` or `strip` did not finish every file (each one was named before).
    Incomplete(String),
    /// What the machine refused otherwise (the current directory, threads, output).
    Other(String),
}

impl Error {
    /// The error of an I/O step on `path`, for `map_err`.
    pub fn io(path: &Path) -> impl FnOnce(io::Error) -> Error + '_ {
        move |error| Error::Io {
            path: path.to_path_buf(),
            error,
        }
    }

    /// The exit status: 1 for every error (usage errors, which clap reports, exit with 2).
    pub fn exit_status(&self) -> u8 {
        1
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io { path, error } => write!(f, "{}: {error}", path.display()),
            Error::Elf { path, error } => write!(f, "{}: {error}", path.display()),
            Error::Note { path, error } => write!(f, "{}: {error}", path.display()),
            Error::Differs { path, why } => write!(f, "{}: {why}", path.display()),
            Error::Model(error) => write!(f, "{error}"),
            Error::Incomplete(what) | Error::Other(what) => f.write_str(what),
        }
    }
}

impl std::error::Error for Error {}
