//! Store directories never change, so what `compute` learns about them is read once and shared by
//! every file (and thread): a directory's names, its `glibc-hwcaps` subdirectories, and whether a
//! file is a library the loader would accept. A tree with thousands of files then costs one
//! directory read per store directory instead of an `open`/`stat` per file, soname and entry.

use std::collections::{HashMap, HashSet};
use std::ffi::OsString;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use ldcache_elf::{Class, Header};

#[derive(Debug, Default)]
struct Listing {
    names: HashSet<OsString>,
    /// The `glibc-hwcaps/*` subdirectories, when the directory has `glibc-hwcaps`.
    hwcaps: Option<Vec<PathBuf>>,
}

/// Cached facts about store directories.
#[derive(Debug, Default)]
pub(crate) struct StoreView {
    listings: Mutex<HashMap<PathBuf, Arc<Listing>>>,
    loadable: Mutex<HashMap<(PathBuf, Class, u16), bool>>,
}

impl StoreView {
    fn listing(&self, dir: &Path) -> Arc<Listing> {
        if let Some(listing) = self.listings.lock().expect("not poisoned").get(dir) {
            return listing.clone();
        }
        let names: HashSet<OsString> = std::fs::read_dir(dir)
            .map(|entries| entries.flatten().map(|e| e.file_name()).collect())
            .unwrap_or_default();
        let hwcaps = names
            .contains(std::ffi::OsStr::new("glibc-hwcaps"))
            .then(|| {
                std::fs::read_dir(dir.join("glibc-hwcaps"))
                    .map(|subdirs| subdirs.flatten().map(|e| e.path()).collect())
                    .unwrap_or_default()
            });
        let listing = Arc::new(Listing { names, hwcaps });
        self.listings
            .lock()
            .expect("not poisoned")
            .insert(dir.to_path_buf(), listing.clone());
        listing
    }

    /// The directory has a `glibc-hwcaps` subdirectory.
    pub fn has_hwcaps(&self, dir: &Path) -> bool {
        self.listing(dir).hwcaps.is_some()
    }

    /// `name` exists in `dir` (a dangling symbolic link does not count).
    fn holds(&self, dir: &Path, name: &str) -> bool {
        self.listing(dir).names.contains(std::ffi::OsStr::new(name)) && dir.join(name).exists()
    }

    /// The soname is in the directory or in one of its `glibc-hwcaps/*` subdirectories.
    pub fn holds_with_hwcaps(&self, dir: &Path, soname: &str) -> bool {
        self.holds(dir, soname)
            || self
                .listing(dir)
                .hwcaps
                .iter()
                .flatten()
                .any(|subdir| self.holds(subdir, soname))
    }

    /// Whether the loader would keep `dir/name` for an object with this header: it exists, and is
    /// not an ELF file of another class or machine (those the loader skips). Anything else that
    /// exists is kept as the loader would keep it (a broken file fails the same way with the cache).
    pub fn is_loadable(&self, dir: &Path, name: &str, object: &Header) -> bool {
        if !self.holds(dir, name) {
            return false;
        }
        let file = dir.join(name);
        let key = (file.clone(), object.class, object.machine);
        if let Some(&known) = self.loadable.lock().expect("not poisoned").get(&key) {
            return known;
        }
        let known = loadable_by(&file, object);
        self.loadable
            .lock()
            .expect("not poisoned")
            .insert(key, known);
        known
    }
}

fn loadable_by(file: &Path, object: &Header) -> bool {
    let Ok(mut handle) = File::open(file) else {
        return false;
    };
    let mut head = Vec::with_capacity(64);
    if handle.by_ref().take(64).read_to_end(&mut head).is_err() {
        return true;
    }
    match ldcache_elf::peek_header(&head) {
        Ok(candidate) => candidate.class == object.class && candidate.machine == object.machine,
        Err(_) => true,
    }
}
