//! Writing the resolution-cache notes into ELF files, changing as few bytes as possible.
//!
//! [`rewrite`] computes the new contents of a file (or refuses, leaving it alone, with a reason);
//! [`Edit`] writes the difference back in an order that keeps the file loadable at every step;
//! [`check`] is the oracle the tests run on every output.
//!
//! The injector reads the headers through `ldcache_elf::image` and writes only: program and section headers,
//! `.shstrtab` when it grows, moved `.interp`/note sections (and the `.symtab` entries that point into
//! them), the notes, and zeroes where something moved away or a note was removed.

#![forbid(unsafe_code)]

pub mod check;
mod draft;
mod edit;
mod gap;
mod rewrite;

pub use edit::Edit;
pub use rewrite::{rewrite, rewrite_into, Rewritten, SECTION_NAME, SELF_CHECK_FAILED};

use std::fmt;

/// The bytes a rewrite is built in: a copy of the old file, grown or cut as the rewrite needs.
pub trait Output: std::ops::DerefMut<Target = [u8]> + Sized {
    /// An owned copy of `bytes`.
    fn copy_of(bytes: &[u8]) -> Self;
    /// Grows (with zero bytes) or cuts the contents to `len` bytes.
    fn set_len(&mut self, len: usize);
}

impl Output for Vec<u8> {
    fn copy_of(bytes: &[u8]) -> Self {
        bytes.to_vec()
    }

    fn set_len(&mut self, len: usize) {
        self.resize(len, 0);
    }
}

/// Why a file was left untouched: its kind, and the reason in words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    kind: RefusalKind,
    reason: String,
}

/// What kind of file the injector refuses, for counting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RefusalKind {
    /// Headers it does not take: malformed, inconsistent, or of a shape it does not handle.
    Unsupported,
    /// No place for the note without moving what must not move.
    NoRoom,
    /// Its own output failed the oracle: a defect of the injector, never of the file.
    SelfCheck,
}

impl Refusal {
    pub(crate) fn unsupported(reason: impl Into<String>) -> Refusal {
        Refusal {
            kind: RefusalKind::Unsupported,
            reason: reason.into(),
        }
    }

    pub(crate) fn no_room(reason: impl Into<String>) -> Refusal {
        Refusal {
            kind: RefusalKind::NoRoom,
            reason: reason.into(),
        }
    }

    pub(crate) fn self_check(reason: impl Into<String>) -> Refusal {
        Refusal {
            kind: RefusalKind::SelfCheck,
            reason: reason.into(),
        }
    }

    pub fn kind(&self) -> RefusalKind {
        self.kind
    }

    pub fn reason(&self) -> &str {
        &self.reason
    }
}

/// Headers the model does not take (`ldcache_elf::image::Image::parse`) are unsupported.
impl From<ldcache_elf::Error> for Refusal {
    fn from(error: ldcache_elf::Error) -> Refusal {
        Refusal::unsupported(error.to_string())
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}

impl std::error::Error for Refusal {}

/// Every offset of a file, as a range of changed bytes: compare everything.
pub(crate) const WHOLE_FILE: std::ops::Range<u64> = 0..u64::MAX;

/// The first offset at or after `from` where `a` and `b` differ, within their common length;
/// compares whole blocks first, as the files are mostly equal.
pub(crate) fn next_difference(a: &[u8], b: &[u8], from: usize) -> Option<usize> {
    const BLOCK: usize = 4096;
    let len = a.len().min(b.len());
    let mut at = from;
    while at < len {
        let end = (at + BLOCK).min(len);
        if a[at..end] != b[at..end] {
            return (at..end).find(|&i| a[i] != b[i]);
        }
        at = end;
    }
    None
}
