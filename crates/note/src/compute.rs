//! Computing the cache of one object from the files present at build time.
//!
//! For each needed soname (`DT_NEEDED` names without `/`, and the sonames of FDO dlopen notes), the
//! object's search path (`DT_RUNPATH`, else `DT_RPATH`) is walked in order:
//! - a directory in the store is immutable: if it holds a loadable file of that name, `=dir/soname`
//!   ends the list; if not, it never will, and is dropped;
//! - a store directory with a `glibc-hwcaps` subdirectory: the loader must pick the variant for the
//!   CPU at run time, so `?dir`; it ends the list if the soname is there (plain or in a subdirectory)
//!   and is dropped if it is nowhere in it;
//! - every other entry (empty, relative, containing `$`, absolute outside the store, or not in normal
//!   form) may change after the build: `?entry` as written, and the walk goes on.
//!
//! A list of hints only is still recorded when it prunes store directories; an empty one is not, nor
//! one that names every entry of the search path (it would only make a miss search them twice).

use std::path::Path;
use std::sync::Arc;

use ldcache_elf::{ElfInfo, Endian, Header, NT_NIXOS_LDCACHE};

use crate::store::StoreView;
use crate::{Cache, Entry, Fingerprint, Place, SearchTag, NT_NIXOS_LDCACHE_FINGERPRINT};

/// What may be taken as immutable, and what was learnt about it so far.
#[derive(Debug, Clone)]
pub struct Rules {
    /// The store directory, e.g. `/nix/store`.
    pub store_dir: String,
    view: Arc<StoreView>,
}

impl Rules {
    pub fn new(store_dir: &str) -> Rules {
        let trimmed = store_dir.trim_end_matches('/');
        Rules {
            store_dir: if trimmed.is_empty() {
                "/".into()
            } else {
                trimmed.into()
            },
            view: Arc::default(),
        }
    }

    /// An absolute directory in normal form (no `.`, `..` or empty components) strictly below the
    /// store directory.
    fn is_store_dir(&self, dir: &str) -> bool {
        let Some(rest) = dir
            .strip_prefix(&self.store_dir)
            .and_then(|r| r.strip_prefix('/'))
        else {
            return false;
        };
        let rest = rest.trim_end_matches('/');
        !rest.is_empty() && rest.split('/').all(|part| !matches!(part, "" | "." | ".."))
    }
}

/// The cache for one object and what it was computed from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Computed {
    pub cache: Cache,
    pub fingerprint: Fingerprint,
}

impl Computed {
    /// The contents of the `.note.nixos.ldcache` section: the cache note, then the fingerprint note,
    /// both with owner `NixOS`, 4-byte aligned, in the object's byte order.
    pub fn section(&self, endian: Endian) -> Vec<u8> {
        let mut out = Vec::new();
        let notes = [
            (NT_NIXOS_LDCACHE, self.cache.encode()),
            (
                NT_NIXOS_LDCACHE_FINGERPRINT,
                self.fingerprint.encode(endian),
            ),
        ];
        for (n_type, desc) in notes {
            for value in [6, desc.len() as u32, n_type] {
                out.extend_from_slice(&match endian {
                    Endian::Little => value.to_le_bytes(),
                    Endian::Big => value.to_be_bytes(),
                });
            }
            out.extend_from_slice(b"NixOS\0\0\0");
            out.extend_from_slice(&desc);
            out.resize(out.len().div_ceil(4) * 4, 0);
        }
        out
    }
}

/// Computes the cache of `info`; `None` when there is nothing to record (no search path, or no
/// soname with any place).
pub fn compute(info: &ElfInfo, rules: &Rules) -> Option<Computed> {
    let (tag, search_path) = match (&info.dynamic.runpath, &info.dynamic.rpath) {
        (Some(runpath), _) => (SearchTag::Runpath, runpath),
        (None, Some(rpath)) => (SearchTag::Rpath, rpath),
        (None, None) => return None,
    };
    let dlopened = info.dlopen_entries().unwrap_or_default();
    let mut sonames: Vec<&str> = info
        .dynamic
        .needed
        .iter()
        .map(String::as_str)
        .chain(
            dlopened
                .iter()
                .flat_map(|e| e.soname.iter().map(String::as_str)),
        )
        // Names with `/` are not searched; `:` and NUL cannot be written in the note.
        .filter(|name| !name.is_empty() && !name.contains(['/', ':', '\0']))
        .collect();
    sonames.sort_unstable();
    sonames.dedup();

    let mut entries = Vec::new();
    for soname in sonames {
        let places = places_for(soname, search_path, &info.header, rules);
        if !places.is_empty() {
            entries.push(Entry {
                soname: soname.to_string(),
                places,
            });
        }
    }
    if entries.is_empty() {
        return None;
    }
    Some(Computed {
        cache: Cache { entries },
        fingerprint: Fingerprint::of(tag, search_path),
    })
}

fn places_for(soname: &str, search_path: &str, header: &Header, rules: &Rules) -> Vec<Place> {
    let mut places = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    for entry in search_path.split(':') {
        if seen.contains(&entry) {
            continue; // The loader searches a directory once per list.
        }
        seen.push(entry);
        if entry.contains('$') || !rules.is_store_dir(entry) {
            places.push(Place::Search(entry.to_string()));
            continue;
        }
        let dir = Path::new(entry);
        if rules.view.has_hwcaps(dir) {
            if rules.view.holds_with_hwcaps(dir, soname) {
                places.push(Place::Search(entry.to_string()));
                break;
            }
            continue;
        }
        if rules.view.is_loadable(dir, soname, header) {
            places.push(Place::File(format!(
                "{}/{soname}",
                entry.trim_end_matches('/')
            )));
            break;
        }
    }
    let mut entries: Vec<&str> = search_path.split(':').collect();
    entries.sort_unstable();
    entries.dedup();
    let prunes = places.len() < entries.len() || places.iter().any(|p| matches!(p, Place::File(_)));
    if !prunes {
        places.clear();
    }
    places
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_directories_in_normal_form_only() {
        let rules = Rules::new("/nix/store/");
        assert!(rules.is_store_dir("/nix/store/abc-zlib/lib"));
        assert!(rules.is_store_dir("/nix/store/abc-zlib/lib/"));
        assert!(!rules.is_store_dir("/nix/store"));
        assert!(!rules.is_store_dir("/nix/store/"));
        assert!(!rules.is_store_dir("/nix/storefoo/lib"));
        assert!(!rules.is_store_dir("/nix/store/abc/../../etc"));
        assert!(!rules.is_store_dir("/nix/store/abc//lib"));
        assert!(!rules.is_store_dir("/nix/store/./abc"));
        assert!(!rules.is_store_dir("/run/opengl-driver/lib"));
    }
}
