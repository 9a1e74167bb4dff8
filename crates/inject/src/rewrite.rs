//! Producing the new bytes of a file: the note inserted, replaced or removed.
//!
//! Insertion never moves code or data and never grows a file by a page. The note (with whatever must
//! move to make room for it) goes into the zero padding after a load segment without `.bss`, which
//! grows to map it: a read-only one if possible, else an executable one, else a writable one (such
//! as the one patchelf appends at the end of a file, which may then grow past that end). It joins
//! the file's 4-byte-aligned `PT_NOTE` when there is one (that note group moves next to it, unless
//! it already ends where the padding begins); otherwise it gets a `PT_NOTE` of its own, in a
//! `PT_NULL` entry or in room made after the program header table (`program_headers`). The section
//! header table and `.shstrtab` grow too (`section_tables`). Only when no padding is large enough
//! do the notes get a load segment of their own at the end of the file.

use std::ops::Range;

use crate::check::check_within;
use crate::draft::{merged, Draft};
use crate::gap::{self, Gap};
use crate::{Output, Refusal};
use ldcache_elf::image::{
    HeaderField, Image, Section, Segment, ET_DYN, ET_EXEC, NIXOS_NAME, PF_R, PT_GNU_PROPERTY,
    PT_INTERP, PT_LOAD, PT_NOTE, PT_NULL, PT_PHDR, SHF_ALLOC, SHT_DYNSYM, SHT_NOTE, SHT_PROGBITS,
    SHT_SYMTAB,
};

mod program_headers;
mod section_tables;

/// The name of the section holding the notes.
pub const SECTION_NAME: &[u8] = b".note.nixos.ldcache";

/// Where an existing note lives.
#[derive(Debug, Clone, Copy)]
struct Slot {
    offset: u64,
    size: u64,
    /// Its section header, if the file has section headers.
    section: Option<usize>,
    /// The `PT_NOTE` covering it.
    note: usize,
}

/// The new contents of `data` with `payload` (the encoded notes) as its only resolution-cache
/// section, or without one when `payload` is `None`. `Ok(None)`: the file is already so.
pub fn rewrite(data: &[u8], payload: Option<&[u8]>) -> Result<Option<Vec<u8>>, Refusal> {
    Ok(rewrite_into(data, payload, || data.to_vec())?.map(|new| new.bytes))
}

/// [`rewrite`], building the new contents in `copy()`, a copy of `data` (made only when the file
/// changes; a copy-on-write mapping spares copying a large file to change a few headers).
pub fn rewrite_into<O: Output>(
    data: &[u8],
    payload: Option<&[u8]>,
    copy: impl FnOnce() -> O,
) -> Result<Option<Rewritten<O>>, Refusal> {
    let mut image = Image::parse(data)?;
    if image.e_type != ET_EXEC && image.e_type != ET_DYN {
        return Err(Refusal::unsupported("not an executable or shared object"));
    }
    // The headers are rewritten; a segment whose contents include them would change.
    let (ehsize, phoff) = (image.ehsize(), image.phoff);
    let table_end = phoff + image.phdr_table_size();
    let on_headers = |s: &Segment| {
        let overlaps = |start: u64, end: u64| s.offset < end && s.file_end() > start;
        matches!(s.p_type, PT_INTERP | PT_NOTE | PT_GNU_PROPERTY)
            && s.filesz > 0
            && (overlaps(0, ehsize) || overlaps(phoff, table_end))
    };
    // patchelf before 0.16, growing the program header table over `.note.gnu.property`, moved the
    // note but left PT_GNU_PROPERTY on the table's bytes, where glibc finds no property note and
    // ignores it. It becomes PT_NULL, which glibc ignores the same way.
    let stale: Vec<usize> = (0..image.segments.len())
        .filter(|&i| {
            let s = &image.segments[i];
            s.p_type == PT_GNU_PROPERTY && on_headers(s) && !image.holds_property_note(data, s)
        })
        .collect();
    for i in stale {
        image.segments[i] = null_segment();
    }
    let covers_headers = image.segments.iter().any(on_headers);
    if covers_headers {
        return Err(Refusal::unsupported(
            "a note or interpreter segment covers the headers",
        ));
    }
    let phdr_mismatch = image.segments.iter().any(|s| {
        s.p_type == PT_PHDR
            && (s.offset != image.phoff || s.filesz != image.phdr_table_size() || !image.maps(s))
    });
    if phdr_mismatch {
        return Err(Refusal::unsupported(
            "PT_PHDR does not describe the program header table",
        ));
    }
    let slot = find_slot(&image, data)?;
    let new = match (slot, payload) {
        (None, None) => return Ok(None),
        (Some(slot), Some(payload))
            if &data[slot.offset as usize..][..slot.size as usize] == payload =>
        {
            return Ok(None)
        }
        (Some(slot), payload) => {
            // Replaced, the note keeps the index of its section header (another tool may have
            // put it before others); removed, it must be the last.
            let stripped = Editor::new(data, image, Draft::new(copy(), Vec::new()))
                .strip(slot, payload.is_some())?;
            match payload {
                None => stripped,
                Some(payload) => {
                    let image = Image::parse(&stripped)?;
                    let (bytes, written) = stripped.into_parts();
                    let draft = Draft::new(O::copy_of(&bytes), written);
                    Editor::new(&bytes, image, draft).insert(payload)?
                }
            }
        }
        (None, Some(payload)) => {
            Editor::new(data, image, Draft::new(copy(), Vec::new())).insert(payload)?
        }
    };
    let (bytes, written) = new.into_parts();
    let written = merged(written);
    // The last line of defence: what the oracle would reject is never written.
    check_within(data, &bytes, &written)
        .map_err(|e| Refusal::self_check(format!("{SELF_CHECK_FAILED}: {e}")))?;
    Ok(Some(Rewritten { bytes, written }))
}

/// A file's new contents.
pub struct Rewritten<O> {
    pub bytes: O,
    /// Where they may differ from the old contents (sorted, disjoint); elsewhere they are the same.
    pub written: Vec<Range<u64>>,
}

/// The start of the reason given when the injector's output fails its own check (a defect in the
/// injector, which the fuzz target hunts for; the file is left alone).
pub const SELF_CHECK_FAILED: &str = "the rewritten file failed the injector's own check";

/// The existing note: a section named `.note.nixos.ldcache`, or (without section headers) a
/// `PT_NOTE` whose notes are all owned by `NixOS`.
fn find_slot(image: &Image, data: &[u8]) -> Result<Option<Slot>, Refusal> {
    let covering_note = |offset: u64, size: u64| {
        image
            .segments
            .iter()
            .position(|s| s.p_type == PT_NOTE && s.contains_file_range(offset, size))
    };
    if !image.sections.is_empty() {
        let Some(index) =
            (0..image.sections.len()).find(|&i| image.section_name(data, i) == SECTION_NAME)
        else {
            return Ok(None);
        };
        let section = image.sections[index];
        let note = covering_note(section.offset, section.size).ok_or_else(|| {
            Refusal::unsupported("the existing note section is not covered by a PT_NOTE")
        })?;
        return Ok(Some(Slot {
            offset: section.offset,
            size: section.size,
            section: Some(index),
            note,
        }));
    }
    // Without section headers: the run of `NixOS` notes that ends a 4-byte-aligned PT_NOTE.
    for (index, segment) in image.segments.iter().enumerate() {
        if segment.p_type != PT_NOTE || segment.align > 4 {
            continue;
        }
        if let Some(start) = trailing_nixos_notes(image, data, segment) {
            return Ok(Some(Slot {
                offset: start,
                size: segment.file_end() - start,
                section: None,
                note: index,
            }));
        }
    }
    Ok(None)
}

/// Walks the 4-byte-aligned notes of a segment: calls `each` with each note's offset and whether
/// it is a `NixOS` note; returns where the walk ended (`None` if a note runs past the segment).
fn walk_notes(
    image: &Image,
    data: &[u8],
    segment: &Segment,
    mut each: impl FnMut(u64, bool),
) -> Option<u64> {
    let mut walk = image.notes(data, segment.offset..segment.file_end());
    let mut at = segment.offset;
    for note in walk.by_ref() {
        if note.offset + note.padded_size > segment.file_end() {
            return None;
        }
        each(note.offset, note.name == NIXOS_NAME);
        at = note.offset + note.padded_size;
    }
    (!walk.overran()).then_some(at)
}

/// Where the notes of a segment end when walked (its end, for a well-formed one).
fn note_ends(image: &Image, data: &[u8], segment: &Segment) -> Option<u64> {
    walk_notes(image, data, segment, |_, _| {})
}

/// Where the `NixOS` notes at the end of a note segment begin, if it ends with some.
fn trailing_nixos_notes(image: &Image, data: &[u8], segment: &Segment) -> Option<u64> {
    let mut run = None;
    let end = walk_notes(image, data, segment, |at, ours| {
        run = match (ours, run) {
            (true, None) => Some(at),
            (true, run) => run,
            (false, _) => None,
        };
    })?;
    run.filter(|_| end == segment.file_end())
}

fn align(value: u64, to: u64) -> u64 {
    value.div_ceil(to) * to
}

/// A file being rewritten: the new bytes and the headers that will describe them.
struct Editor<'a, O> {
    old: &'a [u8],
    out: Draft<O>,
    image: Image,
    /// Old ranges whose contents moved; zeroed at the end where nothing new was written.
    vacated: Vec<(u64, u64)>,
}

/// Something that moves into the gap as one piece: the file range of a `PT_INTERP` or `PT_NOTE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Piece {
    offset: u64,
    size: u64,
    align: u64,
}

/// Where new bytes go: room after a load segment, or a new load segment at the end of the file.
#[derive(Debug, Clone, Copy)]
enum Target {
    Gap(Gap),
    NewLoad { offset: u64, vaddr: u64, align: u64 },
}

impl Target {
    fn offset(&self) -> u64 {
        match self {
            Target::Gap(gap) => gap.offset,
            Target::NewLoad { offset, .. } => *offset,
        }
    }

    /// The address file offset `at` (inside the target) is loaded at.
    fn vaddr_at(&self, at: u64) -> u64 {
        match self {
            Target::Gap(gap) => gap.vaddr + (at - gap.offset),
            Target::NewLoad { offset, vaddr, .. } => vaddr + (at - offset),
        }
    }
}

impl<'a, O: Output> Editor<'a, O> {
    fn new(old: &'a [u8], image: Image, out: Draft<O>) -> Editor<'a, O> {
        Editor {
            old,
            out,
            image,
            vacated: Vec::new(),
        }
    }

    /// Removes the note: zeroed, its section header dropped (or kept, for the new note, when
    /// `keep_header`), the `PT_NOTE` shrunk (or emptied into `PT_NULL`), and the load segment
    /// shrunk when the note was its tail.
    fn strip(mut self, slot: Slot, keep_header: bool) -> Result<Draft<O>, Refusal> {
        let end = slot.offset + slot.size;
        let note = self.image.segments[slot.note];
        if note.offset == slot.offset && note.filesz == slot.size {
            self.image.segments[slot.note] = null_segment();
        } else if note.file_end() == end {
            let kept = slot.offset - note.offset;
            self.image.segments[slot.note].filesz = kept;
            self.image.segments[slot.note].memsz = kept;
        } else {
            return Err(Refusal::unsupported(
                "the note sits in the middle of a PT_NOTE",
            ));
        }
        for load in self
            .image
            .segments
            .iter_mut()
            .filter(|s| s.p_type == PT_LOAD)
        {
            if load.offset == slot.offset && load.filesz == slot.size {
                *load = null_segment(); // A load segment of its own (as patchelf makes).
            } else if load.file_end() == end
                && load.filesz == load.memsz
                && load.offset < slot.offset
            {
                load.filesz = slot.offset - load.offset;
                load.memsz = load.filesz;
            }
        }
        if let Some(index) = slot.section.filter(|_| !keep_header) {
            if index + 1 != self.image.sections.len() {
                return Err(Refusal::unsupported(
                    "the note's section header is not the last one",
                ));
            }
            self.image.sections.pop();
            // The table loses its last entry: cut off at the end of the file, else zeroed.
            let entry = self.image.shoff + self.image.shentsize * index as u64;
            let table_end = entry + self.image.shentsize;
            if table_end == self.out.len() as u64 {
                self.out.set_len(entry as usize);
            } else {
                self.out.zero(entry as usize..table_end as usize);
            }
        }
        self.out.zero(slot.offset as usize..end as usize);
        self.finish()
    }

    fn insert(self, payload: &[u8]) -> Result<Draft<O>, Refusal> {
        let gaps = gap::find(&self.image, self.old);
        let len = payload.len() as u64;
        // The first 4-byte-aligned note group is where the notes belong; without one they get a
        // PT_NOTE of their own.
        let group = self.image.segments.iter().position(|s| {
            s.p_type == PT_NOTE
                && s.align <= 4
                && s.filesz > 0
                && s.filesz % 4 == 0
                && s.offset % 4 == 0
                && note_ends(&self.image, self.old, s) == Some(s.file_end())
        });
        if let Some(index) = group {
            let end = self.image.segments[index].file_end();
            if let Some(gap) = gaps.iter().find(|g| g.offset == end && g.len >= len) {
                let start = gap.offset;
                return self.place(
                    payload,
                    Target::Gap(*gap),
                    start,
                    Vec::new(),
                    Vec::new(),
                    group,
                );
            }
        }
        let new_note = usize::from(group.is_none());
        let in_gap = self
            .make_room(group, 0, new_note)
            .and_then(|(pieces, slots)| {
                Ok((
                    pieces.clone(),
                    slots,
                    Target::Gap(pick(&gaps, &pieces, len)?),
                ))
            });
        let (pieces, slots, target) = match in_gap {
            Ok(plan) => plan,
            // Last resort: a load segment of its own at the end of the file (one more mapping).
            Err(_) => match self.make_room(group, 1, new_note) {
                Ok((pieces, slots)) => (pieces, slots, self.new_load_target()?),
                Err(_) if self.is_library() => {
                    return self.place_with_table(payload, group, 1 + new_note)
                }
                Err(refusal) => return Err(refusal),
            },
        };
        let start = target.offset();
        self.place(payload, target, start, pieces, slots, group)
    }

    /// A shared object that names no interpreter: read by the dynamic loader, which takes its
    /// program headers from wherever `e_phoff` says (the kernel, which insists on the first segment
    /// for programs, never maps it).
    fn is_library(&self) -> bool {
        self.image.e_type == ET_DYN && !self.image.segments.iter().any(|s| s.p_type == PT_INTERP)
    }

    /// The program header table moves into a new load segment at the end of the file, where it can
    /// grow by `entries`; the note group and the notes follow it. (The loader then reads the table
    /// with one more `pread`: this is the last resort.)
    fn place_with_table(
        mut self,
        payload: &[u8],
        group: Option<usize>,
        entries: usize,
    ) -> Result<Draft<O>, Refusal> {
        let target = self.new_load_target()?;
        let table = target.offset();
        let table_size = self.image.phentsize * (self.image.segments.len() + entries) as u64;
        self.vacated
            .push((self.image.phoff, self.image.phdr_table_size()));
        self.image.phoff = table;
        for phdr in self
            .image
            .segments
            .iter_mut()
            .filter(|s| s.p_type == PT_PHDR)
        {
            phdr.offset = table;
            phdr.vaddr = target.vaddr_at(table);
            phdr.paddr = phdr.vaddr;
        }
        self.out.set_len((table + table_size) as usize);
        let (pieces, _) = self.make_room(group, 0, 0)?;
        let slots = vec![None; entries];
        self.place(payload, target, table + table_size, pieces, slots, group)
    }

    /// A new read-only load segment at the end of the file, at the next free page of the address
    /// space and congruent with its offset, so the file needs no page padding.
    fn new_load_target(&self) -> Result<Target, Refusal> {
        let page = self.image.page_size();
        let loads = self.image.segments.iter().filter(|s| s.p_type == PT_LOAD);
        let end = loads.map(|s| s.vaddr + s.memsz).max().unwrap_or(0);
        let offset = align(self.out.len() as u64, 8);
        let vaddr = end
            .checked_next_multiple_of(page)
            .map(|v| v + offset % page)
            .filter(|v| self.image.is_64 || *v < 1 << 31)
            .ok_or_else(|| Refusal::no_room("no address space left for a new segment"))?;
        Ok(Target::NewLoad {
            offset,
            vaddr,
            align: page,
        })
    }

    /// Lays out the moved pieces, then the notes, at `target`, and describes them in the headers.
    fn place(
        mut self,
        payload: &[u8],
        target: Target,
        start: u64,
        pieces: Vec<Piece>,
        slots: Vec<Option<usize>>,
        group: Option<usize>,
    ) -> Result<Draft<O>, Refusal> {
        let mut at = start;
        for piece in pieces {
            at = align(at, piece.align);
            self.move_piece(piece, target, at)?;
            at += piece.size;
        }
        at = align(at, 4);
        let len = payload.len() as u64;
        let end = at + len;
        self.out.write(at as usize, payload);
        let vaddr = target.vaddr_at(at);
        let mut new_entries = Vec::new();
        match target {
            Target::Gap(gap) => {
                let load = &mut self.image.segments[gap.load];
                load.filesz = end - load.offset;
                load.memsz = load.filesz;
            }
            Target::NewLoad {
                offset,
                vaddr,
                align,
            } => new_entries.push(Segment {
                p_type: PT_LOAD,
                flags: PF_R,
                offset,
                vaddr,
                paddr: vaddr,
                filesz: end - offset,
                memsz: end - offset,
                align,
            }),
        }
        match group {
            Some(index) => {
                let note = &mut self.image.segments[index];
                note.filesz = end - note.offset;
                note.memsz = note.filesz;
            }
            None => new_entries.push(Segment {
                p_type: PT_NOTE,
                flags: PF_R,
                offset: at,
                vaddr,
                paddr: vaddr,
                filesz: len,
                memsz: len,
                align: 4,
            }),
        }
        self.add_segments(new_entries, slots);
        self.add_section(Section {
            name: 0,
            sh_type: SHT_NOTE,
            flags: SHF_ALLOC,
            addr: vaddr,
            offset: at,
            size: len,
            link: 0,
            info: 0,
            addralign: 4,
            entsize: 0,
        })?;
        self.finish()
    }

    /// Copies `piece` to `at` in `target` and makes every header and symbol that pointed into it
    /// follow.
    fn move_piece(&mut self, piece: Piece, target: Target, at: u64) -> Result<(), Refusal> {
        let old_vaddr = self.vaddr_of(piece.offset)?;
        let new_vaddr = target.vaddr_at(at);
        if new_vaddr % piece.align != old_vaddr % piece.align {
            return Err(Refusal::no_room(
                "the free room is not aligned like the section to move",
            ));
        }
        let within = |offset: u64, size: u64| {
            offset >= piece.offset && offset + size <= piece.offset + piece.size
        };
        // Everything in the piece is loaded where its offset says, so it shifts by the same amounts.
        let mapped_at = |offset: u64| old_vaddr + (offset - piece.offset);
        let shift = |value: u64, from: u64, to: u64| value - from + to;
        for segment in self.image.segments.iter_mut() {
            if segment.p_type == PT_LOAD || segment.filesz == 0 {
                continue;
            }
            let inside = within(segment.offset, segment.filesz);
            let overlaps =
                segment.offset < piece.offset + piece.size && segment.file_end() > piece.offset;
            if inside && segment.vaddr != mapped_at(segment.offset) {
                return Err(Refusal::unsupported(
                    "a segment's address does not match where it is loaded",
                ));
            }
            if inside && matches!(segment.p_type, PT_INTERP | PT_NOTE | PT_GNU_PROPERTY) {
                segment.offset = shift(segment.offset, piece.offset, at);
                let new_address = shift(segment.vaddr, old_vaddr, new_vaddr);
                // The physical address keeps its distance to the virtual one, whatever it is.
                segment.paddr = segment
                    .paddr
                    .wrapping_sub(segment.vaddr)
                    .wrapping_add(new_address);
                segment.vaddr = new_address;
            } else if overlaps {
                return Err(Refusal::no_room(
                    "a segment other than PT_INTERP or PT_NOTE covers a section to move",
                ));
            }
        }
        let interp: Vec<bool> = (0..self.image.sections.len())
            .map(|i| self.image.section_name(self.old, i) == b".interp")
            .collect();
        let mut moved_sections = Vec::new();
        for (index, section) in self.image.sections.iter_mut().enumerate() {
            let is_interp = interp[index];
            let overlaps = section.offset < piece.offset + piece.size
                && section.offset + section.file_size() > piece.offset;
            if overlaps && !within(section.offset, section.size) {
                return Err(Refusal::no_room("a section straddles the range to move"));
            }
            let movable =
                section.sh_type == SHT_NOTE || section.sh_type == SHT_PROGBITS && is_interp;
            if overlaps && !movable {
                return Err(Refusal::no_room(
                    "a section other than .interp or a note lies in the range to move",
                ));
            }
            if overlaps && section.addr != mapped_at(section.offset) {
                return Err(Refusal::unsupported(
                    "a section's address does not match where it is loaded",
                ));
            }
            if overlaps {
                section.offset = shift(section.offset, piece.offset, at);
                section.addr = shift(section.addr, old_vaddr, new_vaddr);
                moved_sections.push(index);
            }
        }
        self.move_symbols(&moved_sections, old_vaddr, new_vaddr)?;
        let bytes = self.old[piece.offset as usize..][..piece.size as usize].to_vec();
        self.out.write(at as usize, &bytes);
        self.vacated.push((piece.offset, piece.size));
        Ok(())
    }

    /// Symbols defined in moved sections: `.symtab` entries follow; a `.dynsym` entry (which the
    /// running program could use) makes the move unsafe.
    fn move_symbols(
        &mut self,
        moved: &[usize],
        old_vaddr: u64,
        new_vaddr: u64,
    ) -> Result<(), Refusal> {
        if moved.is_empty() {
            return Ok(());
        }
        let (entsize, value_at, shndx_at) = if self.image.is_64 {
            (24, 8, 6)
        } else {
            (16, 4, 14)
        };
        let word = self.image.word() as usize;
        for table in self
            .image
            .sections
            .iter()
            .filter(|s| matches!(s.sh_type, SHT_SYMTAB | SHT_DYNSYM))
        {
            for entry in 0..table.size / entsize {
                let at = (table.offset + entry * entsize) as usize;
                let shndx = self.image.get(&self.old[at + shndx_at..at + shndx_at + 2]) as usize;
                if !moved.contains(&shndx) {
                    continue;
                }
                if table.sh_type == SHT_DYNSYM {
                    return Err(Refusal::no_room(
                        "a dynamic symbol is defined in a section to move",
                    ));
                }
                let value = self
                    .image
                    .get(&self.old[at + value_at..at + value_at + word]);
                let mut bytes = Vec::new();
                self.image.put(
                    &mut bytes,
                    value.wrapping_sub(old_vaddr).wrapping_add(new_vaddr),
                    word,
                );
                self.out.write(at + value_at, &bytes);
            }
        }
        Ok(())
    }

    /// The address at which the load segment containing file offset `offset` maps it.
    fn vaddr_of(&self, offset: u64) -> Result<u64, Refusal> {
        self.image
            .segments
            .iter()
            .find(|s| s.p_type == PT_LOAD && s.contains_file_range(offset, 1))
            .map(|s| s.vaddr + (offset - s.offset))
            .ok_or_else(|| Refusal::unsupported("a section to move is not in a load segment"))
    }

    /// Encodes the headers into the new bytes and zeroes what moved away.
    fn finish(mut self) -> Result<Draft<O>, Refusal> {
        let image = &self.image;
        let table = image.phoff..image.phoff + image.phdr_table_size();
        // Zero the old places of what moved, but where the program header table now lies.
        for &(offset, size) in &self.vacated {
            // A deliberate defect, built only by tests/fault/run.sh: the suites must catch it.
            #[cfg(ldcache_fault)]
            break;
            let (start, end) = (offset as usize, (offset + size) as usize);
            let (before, after) = (table.start as usize, table.end as usize);
            self.out.zero(start..end.min(before).max(start));
            self.out.zero(start.max(after).min(end)..end);
        }
        let phdrs: Vec<u8> = image
            .segments
            .iter()
            .flat_map(|s| image.encode_segment(s))
            .collect();
        let phoff = image.phoff as usize;
        self.out.write(phoff, &phdrs);
        if !image.sections.is_empty() {
            let shdrs: Vec<u8> = image
                .sections
                .iter()
                .flat_map(|s| image.encode_section(s))
                .collect();
            let shoff = image.shoff as usize;
            self.out.write(shoff, &shdrs);
        }
        let mut fields = vec![
            (HeaderField::Phoff, image.phoff),
            (HeaderField::Phnum, image.segments.len() as u64),
        ];
        if !image.sections.is_empty() {
            fields.push((HeaderField::Shnum, image.sections.len() as u64));
            fields.push((HeaderField::Shoff, image.shoff));
        }
        for (field, value) in fields {
            let (at, size) = image.header_field(field);
            let mut bytes = Vec::new();
            image.put(&mut bytes, value, size);
            self.out.write(at as usize, &bytes);
        }
        Ok(self.out)
    }
}

/// The first gap with room for the pieces and the notes.
fn pick(gaps: &[Gap], pieces: &[Piece], len: u64) -> Result<Gap, Refusal> {
    gaps.iter()
        .copied()
        .find(|g| layout_end(g.offset, pieces, len) - g.offset <= g.len)
        .ok_or_else(|| Refusal::no_room("no free room after a read-only load segment"))
}

/// Where the pieces, then notes of `len` bytes, end when laid out from `start` as `place` does.
fn layout_end(start: u64, pieces: &[Piece], len: u64) -> u64 {
    let at = pieces
        .iter()
        .fold(start, |at, p| align(at, p.align) + p.size);
    align(at, 4) + len
}

fn null_segment() -> Segment {
    Segment {
        p_type: PT_NULL,
        flags: 0,
        offset: 0,
        vaddr: 0,
        paddr: 0,
        filesz: 0,
        memsz: 0,
        align: 0,
    }
}
