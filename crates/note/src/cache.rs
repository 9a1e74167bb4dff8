//! The cache note's descriptor: `soname\0path-list\0` pairs sorted by soname, then one empty string.
//! A path-list joins places with `:`; a place is `=<file>` (open exactly this file) or `?<dir>` (search
//! this directory as a `DT_RUNPATH` entry: capability subdirectories, `$ORIGIN` expansion).

use std::fmt;

use serde::Serialize;

/// One place a loader tries for a soname.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Place {
    /// `=<file>`: the file itself; the search is over when it opens.
    File(String),
    /// `?<dir>`: a directory the loader searches at run time, exactly as written in the search path.
    Search(String),
}

impl fmt::Display for Place {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Place::File(file) => write!(f, "={file}"),
            Place::Search(dir) => write!(f, "?{dir}"),
        }
    }
}

/// The places for one soname, in search order.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Entry {
    pub soname: String,
    pub places: Vec<Place>,
}

/// A decoded cache: entries sorted by soname.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize)]
pub struct Cache {
    pub entries: Vec<Entry>,
}

/// Why a descriptor was rejected, with the byte offset where decoding stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError {
    pub offset: usize,
    pub reason: &'static str,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "malformed cache note at byte {}: {}",
            self.offset, self.reason
        )
    }
}

impl std::error::Error for DecodeError {}

impl Cache {
    /// The places recorded for `soname`.
    pub fn lookup(&self, soname: &str) -> Option<&[Place]> {
        self.entries
            .iter()
            .find(|entry| entry.soname == soname)
            .map(|entry| entry.places.as_slice())
    }

    /// The descriptor bytes, entries sorted by soname (the order patchelf writes) whatever the order
    /// they were added in.
    ///
    /// Panics if a soname is empty or a string holds a NUL or (in a place) a `:`, which the format
    /// cannot carry; [`crate::compute`] never produces them.
    pub fn encode(&self) -> Vec<u8> {
        let mut entries: Vec<&Entry> = self.entries.iter().collect();
        entries.sort_by(|a, b| a.soname.as_bytes().cmp(b.soname.as_bytes()));
        let mut out = Vec::new();
        for entry in entries {
            assert!(!entry.soname.is_empty() && !entry.soname.contains('\0'));
            out.extend_from_slice(entry.soname.as_bytes());
            out.push(0);
            for (i, place) in entry.places.iter().enumerate() {
                let text = place.to_string();
                assert!(!text.contains('\0') && !text[1..].contains(':'));
                if i > 0 {
                    out.push(b':');
                }
                out.extend_from_slice(text.as_bytes());
            }
            out.push(0);
        }
        out.push(0);
        out
    }

    /// Decodes a descriptor strictly: every string terminated, every place prefixed with `=` or `?`,
    /// no empty path-list, no repeated soname, the final empty string last.
    pub fn decode(desc: &[u8]) -> Result<Cache, DecodeError> {
        let mut entries: Vec<Entry> = Vec::new();
        let mut at = 0;
        loop {
            let soname = take_string(desc, &mut at, "soname is not NUL-terminated")?;
            if soname.is_empty() {
                break;
            }
            let soname_at = at - soname.len() - 1;
            let list_at = at;
            let list = take_string(desc, &mut at, "path-list is not NUL-terminated")?;
            if list.is_empty() {
                return Err(DecodeError {
                    offset: list_at,
                    reason: "empty path-list",
                });
            }
            let places = list
                .split(':')
                .map(|place| match place.split_at_checked(1) {
                    Some(("=", file)) if !file.is_empty() => Ok(Place::File(file.to_string())),
                    Some(("?", dir)) => Ok(Place::Search(dir.to_string())),
                    _ => Err(DecodeError {
                        offset: list_at,
                        reason: "place without '=' or '?' prefix",
                    }),
                })
                .collect::<Result<Vec<_>, _>>()?;
            if entries.iter().any(|entry| entry.soname == soname) {
                return Err(DecodeError {
                    offset: soname_at,
                    reason: "soname repeated",
                });
            }
            entries.push(Entry {
                soname: soname.to_string(),
                places,
            });
        }
        if at != desc.len() {
            return Err(DecodeError {
                offset: at,
                reason: "bytes after the final empty string",
            });
        }
        Ok(Cache { entries })
    }
}

/// The UTF-8 string at `*at` up to its NUL; advances past the NUL.
fn take_string<'a>(
    desc: &'a [u8],
    at: &mut usize,
    unterminated: &'static str,
) -> Result<&'a str, DecodeError> {
    let start = *at;
    let rest = desc.get(start..).unwrap_or_default();
    let len = rest.iter().position(|&b| b == 0).ok_or(DecodeError {
        offset: start,
        reason: unterminated,
    })?;
    *at = start + len + 1;
    std::str::from_utf8(&rest[..len]).map_err(|_| DecodeError {
        offset: start,
        reason: "string is not UTF-8",
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> Cache {
        Cache {
            entries: vec![
                Entry {
                    soname: "libz.so.1".into(),
                    places: vec![Place::File("/nix/store/a-zlib/lib/libz.so.1".into())],
                },
                Entry {
                    soname: "libGL.so.1".into(),
                    places: vec![
                        Place::Search("/run/opengl-driver/lib".into()),
                        Place::Search("$ORIGIN/../lib".into()),
                        Place::Search(String::new()),
                    ],
                },
            ],
        }
    }

    #[test]
    fn encodes_sorted_with_final_empty_string() {
        let desc = sample().encode();
        let expected = b"libGL.so.1\0?/run/opengl-driver/lib:?$ORIGIN/../lib:?\0\
                         libz.so.1\0=/nix/store/a-zlib/lib/libz.so.1\0\0";
        assert_eq!(desc, expected);
        let decoded = Cache::decode(&desc).unwrap();
        assert_eq!(decoded.lookup("libz.so.1").unwrap().len(), 1);
        assert_eq!(decoded.entries[0].soname, "libGL.so.1");
    }

    #[test]
    fn rejects_malformed_descriptors_precisely() {
        let cases: &[(&[u8], usize, &str)] = &[
            (b"", 0, "soname is not NUL-terminated"),
            (b"libz.so", 0, "soname is not NUL-terminated"),
            (b"libz.so\0=/x", 8, "path-list is not NUL-terminated"),
            (b"libz.so\0=/x\0", 12, "soname is not NUL-terminated"),
            (b"libz.so\0\0\0", 8, "empty path-list"),
            (b"libz.so\0/x\0\0", 8, "place without '=' or '?' prefix"),
            (b"libz.so\0=\0\0", 8, "place without '=' or '?' prefix"),
            (b"a\0=/a\0a\0=/b\0\0", 6, "soname repeated"),
            (b"a\0=/a\0\0\0", 7, "bytes after the final empty string"),
            (b"a\0=/\xff\0\0", 2, "string is not UTF-8"),
        ];
        for (desc, offset, reason) in cases {
            let error = Cache::decode(desc).unwrap_err();
            assert_eq!((error.offset, error.reason), (*offset, *reason), "{desc:?}");
        }
    }

    fn place() -> impl Strategy<Value = Place> {
        let text = "[a-zA-Z0-9/$._{}-]{0,20}";
        prop_oneof![
            text.prop_filter("a file is named", |s: &String| !s.is_empty())
                .prop_map(Place::File),
            text.prop_map(Place::Search),
        ]
    }

    proptest! {
        #[test]
        fn decode_inverts_encode(
            entries in proptest::collection::btree_map("[a-z0-9._+-]{1,16}", proptest::collection::vec(place(), 1..5), 0..8)
        ) {
            let cache = Cache {
                entries: entries.into_iter().map(|(soname, places)| Entry { soname, places }).collect(),
            };
            prop_assert_eq!(Cache::decode(&cache.encode()).unwrap(), cache.clone());
            // And encode inverts decode on everything decode accepts.
            prop_assert_eq!(Cache::decode(&cache.encode()).unwrap().encode(), cache.encode());
        }

        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            if let Ok(cache) = Cache::decode(&bytes) {
                // Whatever decodes is canonical once sorted.
                prop_assert_eq!(Cache::decode(&cache.encode()).unwrap().entries.len(), cache.entries.len());
            }
        }

        #[test]
        fn decode_never_panics_on_near_valid_input(cut in 0usize..80, flip in 0usize..80, value in any::<u8>()) {
            let mut desc = Cache { entries: vec![Entry { soname: "libz.so.1".into(), places: vec![Place::File("/nix/store/a/lib/libz.so.1".into()), Place::Search("$ORIGIN".into())] }] }.encode();
            if flip < desc.len() { desc[flip] = value; }
            desc.truncate(cut);
            let _ = Cache::decode(&desc);
        }
    }
}
