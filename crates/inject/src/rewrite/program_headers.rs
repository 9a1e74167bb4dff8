//! Room for more program headers: `PT_NULL` entries, or bytes after the table that the
//! `.interp` and note sections there can vacate, or that are dead already.

use super::{Editor, Piece};
use crate::{Output, Refusal};
use ldcache_elf::image::{Segment, PT_INTERP, PT_LOAD, PT_NOTE, PT_NULL, PT_PHDR};

impl<O: Output> Editor<'_, O> {
    /// The pieces to move so that `entries` more program headers fit (`PT_NULL` entries first, then
    /// room after the table), plus the note group, which moves next to the notes; and for each new
    /// entry, the `PT_NULL` it takes (`None`: appended to the table).
    pub(super) fn make_room(
        &self,
        group: Option<usize>,
        loads: usize,
        notes: usize,
    ) -> Result<(Vec<Piece>, Vec<Option<usize>>), Refusal> {
        let mut free: Vec<usize> = (0..self.image.segments.len())
            .filter(|&i| self.image.segments[i].p_type == PT_NULL)
            .collect();
        // Load segments stay sorted by address: a new one (the highest) only takes a PT_NULL entry
        // after every other load segment.
        let last_load = self
            .image
            .segments
            .iter()
            .rposition(|s| s.p_type == PT_LOAD);
        let mut take = |after: Option<usize>| {
            let at = free
                .iter()
                .position(|&i| after.is_none_or(|last| i > last))?;
            Some(free.remove(at))
        };
        let mut slots: Vec<Option<usize>> = (0..loads).map(|_| take(last_load)).collect();
        slots.extend((0..notes).map(|_| take(None)));
        let appended = slots.iter().filter(|slot| slot.is_none()).count();
        let mut pieces = if appended > 0 {
            self.pieces_after_table(appended as u64)?
        } else {
            Vec::new()
        };
        if let Some(index) = group {
            let note = self.image.segments[index];
            pieces.retain(|p| p.offset != note.offset);
            pieces.push(Piece {
                offset: note.offset,
                size: note.filesz,
                align: 4,
            });
        }
        Ok((pieces, slots))
    }

    /// Puts new program headers into their slots: a `PT_NULL` entry, or the end of the table (which
    /// `PT_PHDR` then covers too). Load segments stay sorted by address: a new one has the highest.
    pub(super) fn add_segments(&mut self, segments: Vec<Segment>, slots: Vec<Option<usize>>) {
        for (segment, slot) in segments.into_iter().zip(slots) {
            match slot {
                Some(index) => self.image.segments[index] = segment,
                None => {
                    self.image.segments.push(segment);
                    let entry = self.image.phentsize;
                    for phdr in self
                        .image
                        .segments
                        .iter_mut()
                        .filter(|s| s.p_type == PT_PHDR)
                    {
                        phdr.filesz += entry;
                        phdr.memsz += entry;
                    }
                }
            }
        }
    }

    /// The `.interp` and note ranges that follow the program header table, as few as free room for
    /// `entries` more entries. Only program and section headers refer to them, so they can move.
    fn pieces_after_table(&self, entries: u64) -> Result<Vec<Piece>, Refusal> {
        let image = &self.image;
        let table_end = image.phoff + image.phdr_table_size();
        let needed_end = table_end + entries * image.phentsize;
        let first_load = image
            .segments
            .iter()
            .filter(|s| s.p_type == PT_LOAD)
            .min_by_key(|s| s.vaddr)
            .ok_or_else(|| Refusal::unsupported("no load segment"))?;
        if !first_load.contains_file_range(image.phoff, needed_end - image.phoff) {
            return Err(Refusal::no_room(
                "the program header table is not at the start of the first load segment",
            ));
        }
        let mut pieces: Vec<Piece> = Vec::new();
        let mut covered = table_end;
        for segment in image
            .segments
            .iter()
            .filter(|s| matches!(s.p_type, PT_INTERP | PT_NOTE))
        {
            if segment.offset < table_end || segment.filesz == 0 {
                continue;
            }
            if pieces.iter().any(|p| p.offset == segment.offset) {
                continue;
            }
            pieces.push(Piece {
                offset: segment.offset,
                size: segment.filesz,
                align: segment.align.clamp(1, 8),
            });
        }
        pieces.sort_by_key(|p| p.offset);
        let mut needed = Vec::new();
        for piece in pieces {
            if covered >= needed_end {
                break;
            }
            if piece.offset < covered {
                return Err(Refusal::unsupported(
                    "overlapping note or interpreter segments",
                ));
            }
            // Only dead bytes may lie between the pieces.
            if !self.is_dead(covered, piece.offset) {
                break;
            }
            covered = piece.offset + piece.size;
            needed.push(piece);
        }
        if covered < needed_end && self.is_dead(covered, needed_end) {
            covered = needed_end;
        }
        if covered < needed_end {
            return Err(Refusal::no_room("no room for more program headers"));
        }
        // Nothing else may live in the range the table grows into.
        let foreign = image.sections.iter().any(|s| {
            s.file_size() > 0
                && s.offset < covered
                && s.offset + s.size > table_end
                && !needed
                    .iter()
                    .any(|p| s.offset >= p.offset && s.offset + s.size <= p.offset + p.size)
        });
        if foreign {
            return Err(Refusal::no_room(
                "a section other than .interp or a note follows the program headers",
            ));
        }
        Ok(needed)
    }

    /// Whether the old bytes `start..end` serve nothing: zeros, or bytes no section holds that
    /// are zeros and the `Z`s patchelf fills the old places of what it moved with (in a file with
    /// section headers, which then describe every byte the program uses). Without section
    /// headers, zeros where a table the dynamic section names begins (`.dynsym` starts with a
    /// zero symbol) or a segment begins are not dead.
    fn is_dead(&self, start: u64, end: u64) -> bool {
        let Some(bytes) = self.old.get(start as usize..end as usize) else {
            return false;
        };
        if self.image.sections.is_empty() && self.image.anything_starts_in(self.old, start, end) {
            return false;
        }
        let in_section = self.image.sections.iter().any(|s| {
            let contents = s.offset..s.offset + s.file_size();
            !contents.is_empty() && contents.start < end && start < contents.end
        });
        bytes.iter().all(|&b| b == 0)
            || (!self.image.sections.is_empty()
                && !in_section
                && bytes.iter().all(|&b| b == 0 || b == b'Z'))
    }
}
