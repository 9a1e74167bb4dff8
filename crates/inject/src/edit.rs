//! Writing a rewritten file back in place, in an order that keeps it loadable if interrupted.

use std::fs::File;
use std::io;
use std::ops::Range;
use std::os::unix::fs::FileExt;

use crate::draft::merged;
use ldcache_elf::image::Image;

/// The byte ranges where a new version of a file differs from the old one, in write order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edit {
    /// (offset, bytes), in the order they are written.
    pub writes: Vec<(u64, Vec<u8>)>,
    /// The new file length.
    pub len: u64,
}

impl Edit {
    /// The writes that turn `old` into `new`: first the new content (which the old headers do not
    /// refer to), then the headers at the start of the file in one write, then the zeroing of what
    /// moved away or was removed. In-place writes keep every hard link to the file.
    pub fn between(old: &[u8], new: &[u8]) -> Edit {
        Edit::within(old, new, std::slice::from_ref(&crate::WHOLE_FILE))
    }

    /// [`Edit::between`], told that `new` can differ from `old` only in `changed` (sorted,
    /// disjoint ranges) and past the old end of the file: bytes elsewhere are not compared.
    pub fn within(old: &[u8], new: &[u8], changed: &[Range<u64>]) -> Edit {
        let mut content: Vec<(u64, Vec<u8>)> = Vec::new();
        let mut cleanup: Vec<(u64, Vec<u8>)> = Vec::new();
        // The ELF header, and the program header table where it stays in place, are written last
        // in one piece: that write switches the file to its new layout.
        let header_end = match (Image::parse(old), Image::parse(new)) {
            (Ok(a), Ok(b)) if a.phoff == b.phoff => {
                (a.phoff + a.phdr_table_size()).max(b.phoff + b.phdr_table_size())
            }
            (_, Ok(b)) => b.ehsize(),
            _ => 64,
        };
        let header_end = header_end.min(new.len() as u64) as usize;
        let grown = old.len() as u64..u64::MAX;
        for range in merged(changed.iter().cloned().chain([grown]).collect()) {
            let end = range.end.min(new.len() as u64) as usize;
            let mut i = (range.start as usize).max(header_end);
            while i < end {
                // Skip what is unchanged in large steps.
                i = crate::next_difference(old, &new[..end], i)
                    .unwrap_or(old.len().min(end))
                    .max(i);
                if i >= end {
                    break;
                }
                let start = i;
                while i < end && (i >= old.len() || old[i] != new[i]) {
                    i += 1;
                }
                let zeroing = i <= old.len() && new[start..i].iter().all(|&b| b == 0);
                let class = if zeroing { &mut cleanup } else { &mut content };
                push_merged(class, new, start..i);
            }
        }
        let mut writes = content;
        if old.get(..header_end) != Some(&new[..header_end]) {
            writes.push((0, new[..header_end].to_vec()));
        }
        writes.extend(cleanup);
        Edit {
            writes,
            len: new.len() as u64,
        }
    }

    /// Applies the edit to `file` (opened for writing), then sets its length.
    pub fn write_to(&self, file: &File) -> io::Result<()> {
        for (offset, bytes) in &self.writes {
            file.write_all_at(bytes, *offset)?;
        }
        file.set_len(self.len)
    }

    /// Applies the edit to a copy of the old bytes.
    pub fn apply(&self, old: &[u8]) -> Vec<u8> {
        let mut out = old.to_vec();
        out.resize(self.len.max(old.len() as u64) as usize, 0);
        for (offset, bytes) in &self.writes {
            out[*offset as usize..][..bytes.len()].copy_from_slice(bytes);
        }
        out.truncate(self.len as usize);
        out
    }
}

/// Adds the bytes of `range` to the writes, merged with the previous write when only a few
/// unchanged bytes lie between them: fewer, larger writes.
fn push_merged(writes: &mut Vec<(u64, Vec<u8>)>, new: &[u8], range: std::ops::Range<usize>) {
    const CLOSE: usize = 64;
    if let Some((offset, bytes)) = writes.last_mut() {
        let end = *offset as usize + bytes.len();
        if range.start - end <= CLOSE {
            bytes.extend_from_slice(&new[end..range.end]);
            return;
        }
    }
    writes.push((range.start as u64, new[range].to_vec()));
}
