//! The fingerprint note: which search path a cache was computed from.
//!
//! Descriptor (24 bytes, in the object's byte order):
//!
//! | offset | size | field |
//! | --- | --- | --- |
//! | 0 | 4 | version, 2 |
//! | 4 | 4 | the tag whose search step the cache replaces: 29 (`DT_RUNPATH`) or 15 (`DT_RPATH`) |
//! | 8 | 4 | length in bytes of that tag's string |
//! | 12 | 4 | zero |
//! | 16 | 8 | XXH64 (seed 0) of that string's bytes (without the NUL) |
//!
//! A loader uses the cache only when the object has that tag (and, for `DT_RPATH`, no `DT_RUNPATH`)
//! with a string of that length and hash. Any later edit of the search path (patchelf `--set-rpath`,
//! `--shrink-rpath`, `--add-rpath`, `chrpath`, ...) makes the cache stale and the loader ignores it.
//! A hash instead of the string keeps the note small; the check guards against accidents, not attacks
//! (whoever can edit the search path can edit the note). The loader checks it once per object, over
//! a string of up to a few kilobytes: XXH64 takes eight bytes a step in four independent lanes,
//! where version 1's FNV-1a took one byte a step in a chain of multiplications (about 3 % of a
//! program's start-up with full Nix RUNPATHs).

use ldcache_elf::Endian;
use serde::Serialize;

/// Type of the fingerprint note (owner `NixOS`).
pub const NT_NIXOS_LDCACHE_FINGERPRINT: u32 = 0x63a8_6cb7;

const VERSION: u32 = 2;
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

const PRIME_1: u64 = 0x9e37_79b1_85eb_ca87;
const PRIME_2: u64 = 0xc2b2_ae3d_27d4_eb4f;
const PRIME_3: u64 = 0x1656_67b1_9e37_79f9;
const PRIME_4: u64 = 0x85eb_ca77_c2b2_ae63;
const PRIME_5: u64 = 0x27d4_eb2f_1656_67c5;

/// XXH64 with seed 0, as its specification defines it (input read as little-endian words
/// whatever the host). The loader's C (`ldcache_xxh64`) follows the same steps.
pub fn xxh64(bytes: &[u8]) -> u64 {
    fn round(acc: u64, lane: u64) -> u64 {
        acc.wrapping_add(lane.wrapping_mul(PRIME_2))
            .rotate_left(31)
            .wrapping_mul(PRIME_1)
    }
    fn merge(acc: u64, lane: u64) -> u64 {
        (acc ^ round(0, lane))
            .wrapping_mul(PRIME_1)
            .wrapping_add(PRIME_4)
    }
    let word = |b: &[u8]| u64::from_le_bytes(b[..8].try_into().expect("8 bytes"));

    let mut stripes = bytes.chunks_exact(32);
    let mut hash = if bytes.len() >= 32 {
        let mut lanes = [
            PRIME_1.wrapping_add(PRIME_2),
            PRIME_2,
            0,
            PRIME_1.wrapping_neg(),
        ];
        for stripe in &mut stripes {
            for (lane, input) in lanes.iter_mut().zip(stripe.chunks_exact(8)) {
                *lane = round(*lane, word(input));
            }
        }
        let [a, b, c, d] = lanes;
        let mixed = a
            .rotate_left(1)
            .wrapping_add(b.rotate_left(7))
            .wrapping_add(c.rotate_left(12))
            .wrapping_add(d.rotate_left(18));
        lanes.iter().fold(mixed, |acc, &lane| merge(acc, lane))
    } else {
        PRIME_5
    };
    hash = hash.wrapping_add(bytes.len() as u64);

    let mut rest = stripes.remainder();
    while rest.len() >= 8 {
        hash = (hash ^ round(0, word(rest)))
            .rotate_left(27)
            .wrapping_mul(PRIME_1)
            .wrapping_add(PRIME_4);
        rest = &rest[8..];
    }
    if rest.len() >= 4 {
        let half = u32::from_le_bytes(rest[..4].try_into().expect("4 bytes"));
        hash = (hash ^ u64::from(half).wrapping_mul(PRIME_1))
            .rotate_left(23)
            .wrapping_mul(PRIME_2)
            .wrapping_add(PRIME_3);
        rest = &rest[4..];
    }
    for &byte in rest {
        hash = (hash ^ u64::from(byte).wrapping_mul(PRIME_5))
            .rotate_left(11)
            .wrapping_mul(PRIME_1);
    }

    hash ^= hash >> 33;
    hash = hash.wrapping_mul(PRIME_2);
    hash ^= hash >> 29;
    hash = hash.wrapping_mul(PRIME_3);
    hash ^ (hash >> 32)
}

impl Fingerprint {
    /// The fingerprint of a search path string.
    pub fn of(tag: SearchTag, search_path: &str) -> Fingerprint {
        Fingerprint {
            tag,
            length: search_path.len() as u32,
            hash: xxh64(search_path.as_bytes()),
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
    fn xxh64_reference_values() {
        // From the XXH64 specification's reference implementation.
        assert_eq!(xxh64(b""), 0xef46_db37_51d8_e999);
        assert_eq!(xxh64(b"a"), 0xd24e_c4f1_a98c_6e5b);
        assert_eq!(xxh64(b"abc"), 0x44bc_2cf5_ad77_0999);
    }

    proptest::proptest! {
        /// Every length: the 32-byte stripes, the 8- and 4-byte words and single bytes.
        #[test]
        fn xxh64_agrees_with_an_independent_implementation(
            bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..200)
        ) {
            proptest::prop_assert_eq!(xxh64(&bytes), xxhash_rust::xxh64::xxh64(&bytes, 0));
        }
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
        bad[0] = 1;
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
