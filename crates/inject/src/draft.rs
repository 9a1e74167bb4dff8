//! The new contents of a file while it is rewritten: a copy of the old bytes, and every range
//! written since. Outside those ranges the bytes are the old ones, so only they need comparing (by
//! the self-check) and writing back.

use std::ops::{Deref, Range};

use crate::Output;

pub struct Draft<O> {
    bytes: O,
    written: Vec<Range<u64>>,
}

impl<O: Output> Draft<O> {
    /// A draft of `bytes`, a copy of a file that differs from it in `written`.
    pub fn new(bytes: O, written: Vec<Range<u64>>) -> Draft<O> {
        Draft { bytes, written }
    }

    /// Writes `bytes` at `at`, growing the contents first when they reach past the end.
    pub fn write(&mut self, at: usize, bytes: &[u8]) {
        let end = at + bytes.len();
        if self.bytes.len() < end {
            self.set_len(end);
        }
        self.bytes[at..end].copy_from_slice(bytes);
        self.note(at..end);
    }

    pub fn zero(&mut self, range: Range<usize>) {
        self.bytes[range.clone()].fill(0);
        self.note(range);
    }

    /// Grows (with zeros, which count as written) or cuts the contents.
    pub fn set_len(&mut self, len: usize) {
        let old = self.bytes.len();
        self.bytes.set_len(len);
        if len > old {
            self.note(old..len);
        }
    }

    pub fn into_parts(self) -> (O, Vec<Range<u64>>) {
        (self.bytes, self.written)
    }

    fn note(&mut self, range: Range<usize>) {
        if !range.is_empty() {
            self.written.push(range.start as u64..range.end as u64);
        }
    }
}

impl<O: Output> Deref for Draft<O> {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.bytes
    }
}

/// `ranges` sorted and merged where they overlap or touch.
pub fn merged(mut ranges: Vec<Range<u64>>) -> Vec<Range<u64>> {
    ranges.sort_unstable_by_key(|r| (r.start, r.end));
    let mut out: Vec<Range<u64>> = Vec::with_capacity(ranges.len());
    for range in ranges {
        match out.last_mut() {
            Some(last) if range.start <= last.end => last.end = last.end.max(range.end),
            _ => out.push(range),
        }
    }
    out
}
