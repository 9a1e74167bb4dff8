//! Pieces shared by the subcommands.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use ldcache_elf::ElfInfo;
use ldcache_search::{default_interpreter, LoaderProfile};

use crate::error::Error;
use crate::mapped::Mapped;

/// `--store-dir`: the directory whose contents never change.
#[derive(clap::Args, Clone)]
pub struct StoreArgs {
    /// The store directory (default: $NIX_STORE, else /nix/store).
    #[arg(long, value_name = "DIR", value_parser = store_dir)]
    pub store_dir: Option<String>,
}

/// `--store-dir`'s value: it is compared with the directories of run paths as written, so a
/// relative or unnormalised one would silently match none of them.
fn store_dir(value: &str) -> Result<String, String> {
    let normal = value.starts_with('/')
        && value
            .trim_end_matches('/')
            .split('/')
            .skip(1)
            .all(|part| !matches!(part, "" | "." | ".."));
    if normal {
        Ok(value.to_string())
    } else {
        Err("must be an absolute path without '.', '..' or empty components".to_string())
    }
}

impl StoreArgs {
    pub fn rules(&self) -> ldcache_note::Rules {
        let dir = self
            .store_dir
            .clone()
            .or_else(|| std::env::var("NIX_STORE").ok().filter(|s| !s.is_empty()))
            .unwrap_or_else(|| "/nix/store".to_string());
        ldcache_note::Rules::new(&dir)
    }
}

/// Opens a regular file for reading; an error for anything else, at once (a FIFO or a device is
/// opened without blocking, and not read).
pub fn open_regular(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)?;
    let kind = file.metadata()?.file_type();
    if !kind.is_file() {
        let what = if kind.is_dir() {
            "a directory"
        } else if kind.is_fifo() {
            "a FIFO"
        } else if kind.is_socket() {
            "a socket"
        } else {
            "a device"
        };
        return Err(std::io::Error::other(format!(
            "not a regular file ({what})"
        )));
    }
    Ok(file)
}

/// A regular file's bytes (mapped).
pub fn map_regular(path: &Path) -> Result<Mapped, Error> {
    open_regular(path)
        .and_then(|file| Mapped::of(&file))
        .map_err(Error::io(path))
}

/// Reads and parses an ELF file.
pub fn read_elf(path: &Path) -> Result<ElfInfo, Error> {
    let data = map_regular(path)?;
    ldcache_elf::parse(&data).map_err(|error| Error::Elf {
        path: path.to_path_buf(),
        error,
    })
}

/// The loader that starts `info`: `--loader`, its `PT_INTERP`, or the system's for its machine.
pub fn interpreter_of(info: &ElfInfo, loader: Option<&Path>) -> PathBuf {
    match (loader, &info.interpreter) {
        (Some(loader), _) => loader.to_path_buf(),
        (None, Some(interp)) => PathBuf::from(interp),
        (None, None) => PathBuf::from(default_interpreter(info.header.machine, info.header.class)),
    }
}

/// Loader profiles, probed once per loader.
#[derive(Default)]
pub struct Profiles(HashMap<PathBuf, LoaderProfile>);

impl Profiles {
    pub fn get(&mut self, interpreter: &Path, info: &ElfInfo) -> &LoaderProfile {
        self.0
            .entry(interpreter.to_path_buf())
            .or_insert_with(|| LoaderProfile::for_interpreter(interpreter, info.header.class))
    }
}

/// The threads a parallel command works on: `jobs` of them (default: one per CPU), this thread
/// among them, so that `--jobs 1` runs everything on it, in order.
pub fn worker_pool(jobs: Option<usize>) -> Result<rayon::ThreadPool, Error> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(jobs.unwrap_or(0))
        .use_current_thread()
        .build()
        .map_err(|e| Error::Other(format!("starting worker threads: {e}")))
}

/// The current directory, against which relative search directories are opened.
pub fn current_dir() -> Result<PathBuf, Error> {
    std::env::current_dir().map_err(|e| Error::Other(format!("current directory: {e}")))
}
