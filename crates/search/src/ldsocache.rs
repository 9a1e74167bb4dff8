//! Reading `ld.so.cache` in the format glibc ≥ 2.32 writes (`glibc-ld.so.cache1.1`), optionally
//! behind the old `ld.so-1.7.0` table, and looking a soname up the way the loader does.

use std::fmt;

const OLD_MAGIC: &[u8] = b"ld.so-1.7.0";
const NEW_MAGIC: &[u8] = b"glibc-ld.so.cache1.1";
const NEW_HEADER_LEN: usize = 48;
const NEW_ENTRY_LEN: usize = 24;
const EXTENSION_MAGIC: u32 = 0xeaa4_2174;
const EXTENSION_TAG_GLIBC_HWCAPS: u32 = 1;
/// Set (alone among the upper bits, ISA-level bits aside) when the low 32 bits index the hwcaps table.
const HWCAP_EXTENSION: u64 = 1 << 62;
const ISA_LEVEL_MASK: u64 = (1 << 10) - 1;

/// A malformed cache file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheError(&'static str);

impl fmt::Display for CacheError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "malformed ld.so.cache: {}", self.0)
    }
}

impl std::error::Error for CacheError {}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    flags: i32,
    key: String,
    value: String,
    /// Index into `hwcaps` for a `glibc-hwcaps` entry.
    hwcaps_index: Option<u32>,
    /// A legacy hwcap mask (glibc < 2.37 layouts); such entries are not used by this model.
    legacy_hwcap: bool,
}

/// The parsed cache: entries in file order and the names of its `glibc-hwcaps` subdirectories.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LdSoCache {
    entries: Vec<Entry>,
    hwcaps: Vec<String>,
}

impl LdSoCache {
    /// Parses a cache file written in the host's byte order.
    pub fn parse(data: &[u8]) -> Result<LdSoCache, CacheError> {
        let start = if data.starts_with(OLD_MAGIC) {
            // The old table: 12-byte header (magic padded, nlibs), 12-byte entries; the new table
            // follows, 8-byte aligned.
            let nlibs = read_u32(data, 12).ok_or(CacheError("truncated old header"))? as usize;
            let end = nlibs
                .checked_mul(12)
                .and_then(|n| n.checked_add(16))
                .ok_or(CacheError("old entry count overflows"))?;
            (end + 7) & !7
        } else {
            0
        };
        let new = data.get(start..).ok_or(CacheError("no new-format table"))?;
        if !new.starts_with(NEW_MAGIC) {
            return Err(CacheError("no glibc-ld.so.cache1.1 table"));
        }
        let field = |at: usize| read_u32(new, at).ok_or(CacheError("truncated header"));
        let nlibs = field(20)? as usize;
        let extension_offset = field(32)? as usize;
        let string = |offset: u32| -> Result<String, CacheError> {
            let tail = new
                .get(offset as usize..)
                .ok_or(CacheError("string offset past end"))?;
            let end = tail
                .iter()
                .position(|&b| b == 0)
                .ok_or(CacheError("unterminated string"))?;
            String::from_utf8(tail[..end].to_vec()).map_err(|_| CacheError("string is not UTF-8"))
        };

        let mut entries = Vec::with_capacity(nlibs.min(new.len() / NEW_ENTRY_LEN));
        for i in 0..nlibs {
            let at = NEW_HEADER_LEN + i * NEW_ENTRY_LEN;
            let entry = new
                .get(at..at + NEW_ENTRY_LEN)
                .ok_or(CacheError("entry table past end"))?;
            let hwcap = read_u64(entry, 16).expect("entry has 24 bytes");
            let is_extension = (hwcap >> 32) & !ISA_LEVEL_MASK == HWCAP_EXTENSION >> 32;
            entries.push(Entry {
                flags: read_u32(entry, 0).expect("entry has 24 bytes") as i32,
                key: string(read_u32(entry, 4).expect("entry has 24 bytes"))?,
                value: string(read_u32(entry, 8).expect("entry has 24 bytes"))?,
                hwcaps_index: is_extension.then_some(hwcap as u32),
                legacy_hwcap: !is_extension && hwcap != 0,
            });
        }

        let mut hwcaps = Vec::new();
        if extension_offset != 0 && read_u32(new, extension_offset) == Some(EXTENSION_MAGIC) {
            let count =
                read_u32(new, extension_offset + 4).ok_or(CacheError("truncated extension"))?;
            for i in 0..count as usize {
                let at = extension_offset + 8 + i * 16;
                let tag = read_u32(new, at).ok_or(CacheError("truncated extension section"))?;
                let offset =
                    read_u32(new, at + 8).ok_or(CacheError("truncated extension section"))?;
                let size =
                    read_u32(new, at + 12).ok_or(CacheError("truncated extension section"))?;
                if tag == EXTENSION_TAG_GLIBC_HWCAPS {
                    for j in 0..size as usize / 4 {
                        let name = read_u32(new, offset as usize + 4 * j)
                            .ok_or(CacheError("hwcaps table past end"))?;
                        hwcaps.push(string(name)?);
                    }
                }
            }
        }
        Ok(LdSoCache { entries, hwcaps })
    }

    /// The path the loader takes from the cache for `name`: among entries for this soname whose flags
    /// `accept_flags` allows, a `glibc-hwcaps` entry of the best active subdirectory (`active` in
    /// priority order) wins, then the first plain entry.
    pub fn lookup(
        &self,
        name: &str,
        accept_flags: impl Fn(i32) -> bool,
        active: &[String],
    ) -> Option<&str> {
        let mut best: Option<(usize, &str)> = None;
        for entry in &self.entries {
            if entry.key != name || !accept_flags(entry.flags) || entry.legacy_hwcap {
                continue;
            }
            let rank = match entry.hwcaps_index {
                Some(index) => {
                    let Some(subdir) = self.hwcaps.get(index as usize) else {
                        continue;
                    };
                    match active.iter().position(|a| a == subdir) {
                        Some(rank) => rank,
                        None => continue,
                    }
                }
                None => usize::MAX,
            };
            if best.is_none_or(|(best_rank, _)| rank < best_rank) {
                best = Some((rank, &entry.value));
            }
        }
        best.map(|(_, path)| path)
    }
}

/// The flags ldconfig records for a library of this machine and class that glibc's
/// `_dl_cache_check_flags` accepts; `None` means "any libc6 entry".
pub fn expected_flags(machine: u16, is_64: bool) -> Option<i32> {
    const FLAG_ELF_LIBC6: i32 = 0x0003;
    match (machine, is_64) {
        (62, true) => Some(FLAG_ELF_LIBC6 | 0x0300),
        (62, false) | (3, _) => Some(FLAG_ELF_LIBC6),
        (183, true) => Some(FLAG_ELF_LIBC6 | 0x0a00),
        _ => None,
    }
}

fn read_u32(data: &[u8], at: usize) -> Option<u32> {
    let bytes = data.get(at..at.checked_add(4)?)?;
    Some(u32::from_ne_bytes(bytes.try_into().ok()?))
}

fn read_u64(data: &[u8], at: usize) -> Option<u64> {
    let bytes = data.get(at..at.checked_add(8)?)?;
    Some(u64::from_ne_bytes(bytes.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_garbage_without_panicking() {
        for len in 0..80 {
            let mut data = NEW_MAGIC.to_vec();
            data.resize(len.max(NEW_MAGIC.len()), 0xff);
            let _ = LdSoCache::parse(&data);
        }
        assert!(LdSoCache::parse(b"not a cache").is_err());
    }

    #[test]
    fn system_cache_finds_libc() {
        let Ok(data) = std::fs::read("/etc/ld.so.cache") else {
            return;
        };
        let cache = LdSoCache::parse(&data).expect("the system cache parses");
        let flags = expected_flags(62, true).unwrap();
        let libc = cache.lookup("libc.so.6", |f| f == flags, &[]);
        assert!(libc.is_some_and(|p| p.ends_with("/libc.so.6")), "{libc:?}");
    }
}
