//! The fingerprint note: which search path a cache was computed from.
//!
//! Descriptor (24 bytes, in the object's byte order):
//!
//! | offset | size | field |
//! | --- | --- | --- |
//! | 0 | 4 | version, 1 |
//! | 4 | 4 | the tag whose search step the cache replaces: 29 (`DT_RUNPATH`) or 15 (`DT_RPATH`) |
//! | 8 | 4 | length in bytes of that tag's string |
//! | 12 | 4 | zero |
//! | 16 | 8 | FNV-1a 64 of that string's bytes (without the NUL) |
//!
//! A loader uses the cache only when the object has that tag (and, for `DT_RPATH`, no `DT_RUNPATH`)
//! with a string of that length and hash. Any later edit of the search path (patchelf `--set-rpath`,
//! `--shrink-rpath`, `--add-rpath`, `chrpath`, ...) makes the cache stale and the loader ignores it.
//! A hash instead of the string keeps the note small; the check guards against accidents, not attacks
//! (whoever can edit the search path can edit the note).

use ldcache_elf::Endian;
use serde::Serialize;

/// Type of the fingerprint note (owner `NixOS`).
pub const NT_NIXOS_LDCACHE_FINGERPRINT: u32 = 0x63a8_6cb7;

const VERSION: u32 = 1;
const DESC_LEN: usize = 24;

/// The search step a cache replaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SearchTag {
    /// The object's `DT_RUNPATH` step (after `LD_LIBRARY_PATH`).
    Runpath,
    /// The object's own `DT_RPATH` step (before `LD_LIBRARY_PATH`).
    Rpath,
}

impl SearchTag {
    fn dt(self) -> u32 {
        match self {
            SearchTag::Runpath => 29,
            SearchTag::Rpath => 15,
        }
    }
}

/// What a cache was computed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct Fingerprint {
    pub tag: SearchTag,
    pub length: u32,
    pub hash: u64,
}

/// FNV-1a, 64 bits: a few lines in any language, including the loader's C.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

impl Fingerprint {
    /// The fingerprint of a search path string.
    pub fn of(tag: SearchTag, search_path: &str) -> Fingerprint {
        Fingerprint {
            tag,
            length: search_path.len() as u32,
            hash: fnv1a64(search_path.as_bytes()),
        }
    }

    /// Whether the cache applies to an object with these tags, as a loader decides.
    pub fn matches(&self, runpath: Option<&str>, rpath: Option<&str>) -> bool {
        let present = match (self.tag, runpath, rpath) {
            (SearchTag::Runpath, Some(runpath), _) => runpath,
            (SearchTag::Rpath, None, Some(rpath)) => rpath,
            _ => return false,
        };
        *self == Fingerprint::of(self.tag, present)
    }

    pub fn encode(&self, endian: Endian) -> Vec<u8> {
        let mut out = Vec::with_capacity(DESC_LEN);
        let put32 = |out: &mut Vec<u8>, v: u32| match endian {
            Endian::Little => out.extend_from_slice(&v.to_le_bytes()),
            Endian::Big => out.extend_from_slice(&v.to_be_bytes()),
        };
        put32(&mut out, VERSION);
        put32(&mut out, self.tag.dt());
        put32(&mut out, self.length);
        put32(&mut out, 0);
        match endian {
            Endian::Little => out.extend_from_slice(&self.hash.to_le_bytes()),
            Endian::Big => out.extend_from_slice(&self.hash.to_be_bytes()),
        }
        out
    }

    /// Decodes a descriptor; `Err` names what is wrong.
    pub fn decode(desc: &[u8], endian: Endian) -> Result<Fingerprint, &'static str> {
        if desc.len() != DESC_LEN {
            return Err("fingerprint note is not 24 bytes");
        }
        let u32_at = |at: usize| {
            let b: [u8; 4] = desc[at..at + 4].try_into().expect("in bounds");
            match endian {
                Endian::Little => u32::from_le_bytes(b),
                Endian::Big => u32::from_be_bytes(b),
            }
        };
        if u32_at(0) != VERSION {
            return Err("unknown fingerprint version");
        }
        let tag = match u32_at(4) {
            29 => SearchTag::Runpath,
            15 => SearchTag::Rpath,
            _ => return Err("fingerprint names neither DT_RUNPATH nor DT_RPATH"),
        };
        if u32_at(12) != 0 {
            return Err("fingerprint reserved field is not zero");
        }
        let hash: [u8; 8] = desc[16..24].try_into().expect("in bounds");
        Ok(Fingerprint {
            tag,
            length: u32_at(8),
            hash: match endian {
                Endian::Little => u64::from_le_bytes(hash),
                Endian::Big => u64::from_be_bytes(hash),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a64_reference_values() {
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn round_trips_in_both_byte_orders_and_detects_edits() {
        let fp = Fingerprint::of(SearchTag::Runpath, "/nix/store/a/lib:/nix/store/b/lib");
        for endian in [Endian::Little, Endian::Big] {
            assert_eq!(Fingerprint::decode(&fp.encode(endian), endian), Ok(fp));
        }
        assert!(fp.matches(Some("/nix/store/a/lib:/nix/store/b/lib"), None));
        assert!(!fp.matches(Some("/nix/store/a/lib"), None));
        assert!(!fp.matches(None, Some("/nix/store/a/lib:/nix/store/b/lib")));
        let rpath = Fingerprint::of(SearchTag::Rpath, "/x");
        assert!(rpath.matches(None, Some("/x")));
        assert!(
            !rpath.matches(Some("/x"), Some("/x")),
            "DT_RUNPATH switches DT_RPATH off"
        );
    }

    #[test]
    fn rejects_malformed() {
        let good = Fingerprint::of(SearchTag::Rpath, "/x").encode(Endian::Little);
        assert!(Fingerprint::decode(&good[..23], Endian::Little).is_err());
        let mut bad = good.clone();
        bad[0] = 2;
        assert_eq!(
            Fingerprint::decode(&bad, Endian::Little),
            Err("unknown fingerprint version")
        );
        let mut bad = good.clone();
        bad[4] = 1;
        assert!(Fingerprint::decode(&bad, Endian::Little).is_err());
        let mut bad = good;
        bad[12] = 1;
        assert!(Fingerprint::decode(&bad, Endian::Little).is_err());
    }
}
