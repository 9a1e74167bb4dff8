//! Pieces shared by the subcommands.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use ldcache_elf::ElfInfo;
use ldcache_search::{default_interpreter, LoaderProfile};

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

/// Reads and parses an ELF file, with the path in the error.
pub fn read_elf(path: &Path) -> Result<ElfInfo, String> {
    let data = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    ldcache_elf::parse(&data).map_err(|e| format!("{}: {e}", path.display()))
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
