//! The notes an object already carries, and whether a patched loader would use them.

use ldcache_elf::{ElfInfo, NOTE_OWNER_NIXOS, NT_NIXOS_LDCACHE};

use crate::{Cache, DecodeError, Fingerprint, Place, SearchTag, NT_NIXOS_LDCACHE_FINGERPRINT};

/// The cache note of an object and its fingerprint note, decoded.
#[derive(Debug, Clone)]
pub struct Present {
    pub cache: Result<Cache, DecodeError>,
    /// `None` for a note without fingerprint (as patchelf writes).
    pub fingerprint: Option<Result<Fingerprint, &'static str>>,
}

impl Present {
    /// The first cache note of `info` and the first fingerprint note; `None` without a cache note.
    pub fn read(info: &ElfInfo) -> Option<Present> {
        let cache = info.notes_of(NOTE_OWNER_NIXOS, NT_NIXOS_LDCACHE).next()?;
        let fingerprint = info
            .notes_of(NOTE_OWNER_NIXOS, NT_NIXOS_LDCACHE_FINGERPRINT)
            .next()
            .map(|note| Fingerprint::decode(&note.desc, info.header.endian));
        Some(Present {
            cache: Cache::decode(&cache.desc),
            fingerprint,
        })
    }

    /// The search step this cache replaces, as the patched loader decides: the fingerprint's, or
    /// `DT_RUNPATH` for a note without one.
    pub fn tag(&self) -> SearchTag {
        match &self.fingerprint {
            Some(Ok(fingerprint)) => fingerprint.tag,
            _ => SearchTag::Runpath,
        }
    }

    /// The cache a patched loader would use for `info`, or why it would not: a malformed note, a
    /// fingerprint that no longer matches the search path, (without a fingerprint) no `DT_RUNPATH`,
    /// or an empty search path.
    pub fn usable(&self, info: &ElfInfo) -> Result<&Cache, String> {
        let cache = self.cache.as_ref().map_err(ToString::to_string)?;
        let (runpath, rpath) = (
            info.dynamic.runpath.as_deref(),
            info.dynamic.rpath.as_deref(),
        );
        match &self.fingerprint {
            Some(Ok(fingerprint)) if fingerprint.matches(runpath, rpath) => {}
            Some(Ok(_)) => {
                return Err("stale: the search path changed after the cache was computed".into())
            }
            Some(Err(reason)) => return Err(format!("malformed fingerprint: {reason}")),
            None if runpath.is_some() => {}
            None => return Err("no fingerprint and no DT_RUNPATH".into()),
        }
        // The loader does not search an empty search path, so neither does it ask its cache.
        let replaced = match self.tag() {
            SearchTag::Runpath => runpath,
            SearchTag::Rpath => rpath,
        };
        if replaced == Some("") {
            return Err("the search path it replaces is empty".into());
        }
        Ok(cache)
    }

    /// Whether the note still describes the object as it is now: the loader would use it, and it
    /// names only sonames the object needs or declares it may dlopen. Without a fingerprint, every
    /// place must also come from an entry of the present search path.
    pub fn current(&self, info: &ElfInfo) -> Result<(), String> {
        let cache = self.usable(info)?;
        let dlopened = info.dlopen_entries().unwrap_or_default();
        let wanted = |soname: &str| {
            info.dynamic.needed.iter().any(|n| n == soname)
                || dlopened
                    .iter()
                    .any(|e| e.soname.iter().any(|n| n == soname))
        };
        if let Some(entry) = cache.entries.iter().find(|e| !wanted(&e.soname)) {
            return Err(format!("{} is no longer needed", entry.soname));
        }
        if self.fingerprint.is_none() {
            let (_, search_path) = info.search_path().ok_or("no search path")?;
            let entries: Vec<&str> = search_path.split(':').collect();
            for entry in &cache.entries {
                for place in &entry.places {
                    let dir = match place {
                        Place::File(file) => file.rsplit_once('/').map_or("", |(dir, _)| dir),
                        Place::Search(dir) => dir,
                    };
                    let listed = entries
                        .iter()
                        .any(|e| *e == dir || (!dir.is_empty() && e.trim_end_matches('/') == dir));
                    if !listed {
                        return Err(format!("{place} is not on the search path"));
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use ldcache_elf::{Class, Dynamic, Endian, Header, Linkage, Note};

    use super::*;

    /// A program whose DT_RUNPATH is `runpath`, carrying a cache note for libz (no fingerprint,
    /// as patchelf writes it).
    fn noted(runpath: &str) -> ElfInfo {
        let cache = Cache {
            entries: vec![crate::Entry {
                soname: "libz.so.1".into(),
                places: vec![Place::File("/nix/store/a-zlib/lib/libz.so.1".into())],
            }],
        };
        ElfInfo {
            header: Header {
                class: Class::Elf64,
                endian: Endian::Little,
                e_type: 3,
                machine: 62,
                osabi: 0,
            },
            linkage: Linkage::Dynamic,
            interpreter: None,
            dynamic: Dynamic {
                needed: vec!["libz.so.1".into()],
                runpath: Some(runpath.into()),
                ..Dynamic::default()
            },
            notes: vec![Note {
                owner: NOTE_OWNER_NIXOS.to_vec(),
                n_type: NT_NIXOS_LDCACHE,
                desc: cache.encode(),
                offset: 0,
                size: 0,
            }],
        }
    }

    #[test]
    fn a_cache_for_an_empty_search_path_is_not_used() {
        // The loader never searches an empty DT_RUNPATH, so it never asks the cache that
        // replaces it either.
        let info = noted("");
        let present = Present::read(&info).unwrap();
        assert!(present.usable(&info).unwrap_err().contains("empty"));

        let info = noted("/nix/store/a-zlib/lib");
        let present = Present::read(&info).unwrap();
        assert!(present.usable(&info).is_ok());
    }
}
