//! Walking the notes of a `PT_NOTE` segment, keeping where each one sits in the file: the one
//! note walker of the project (the reader's, the injector's and its oracle's).

use crate::Endian;

/// Owner of this project's and patchelf's resolution-cache notes.
pub const NOTE_OWNER_NIXOS: &[u8] = b"NixOS";
/// Type of the resolution-cache note (`.note.nixos.ldcache`).
pub const NT_NIXOS_LDCACHE: u32 = 0x63a8_6cb6;
/// Owner of the freedesktop.org dlopen metadata note.
pub const NOTE_OWNER_FDO: &[u8] = b"FDO";
/// Type of the dlopen metadata note (`.note.dlopen`).
pub const NT_FDO_DLOPEN: u32 = 0x407c_0c0a;

/// One ELF note: `namesz`, `descsz`, `type`, then the padded name and descriptor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// The owner name without its terminating NUL.
    pub owner: Vec<u8>,
    pub n_type: u32,
    /// The descriptor, exactly `descsz` bytes.
    pub desc: Vec<u8>,
    /// File offset of the note header.
    pub offset: u64,
    /// Bytes from the header to the end of the padded descriptor.
    pub size: u64,
}

/// One note where it lies, borrowed from the bytes walked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoteRef<'a> {
    /// File offset of the note header.
    pub offset: u64,
    /// The name as stored, `namesz` bytes (its terminating NUL included, when it has one).
    pub name: &'a [u8],
    pub n_type: u32,
    /// The descriptor, exactly `descsz` bytes.
    pub desc: &'a [u8],
    /// Bytes from the header to the end of the padded descriptor: where the next note begins.
    pub padded_size: u64,
    /// The same, cut off where the bytes walked end (the last note's padding may be missing).
    pub size: u64,
}

impl NoteRef<'_> {
    /// The owner: the name without its terminating NUL.
    pub fn owner(&self) -> &[u8] {
        self.name.strip_suffix(b"\0").unwrap_or(self.name)
    }
}

/// The walk over the notes of one `PT_NOTE` segment or note section: see [`notes_in`].
#[derive(Debug, Clone)]
pub struct NoteWalk<'a> {
    data: &'a [u8],
    base: u64,
    align: usize,
    endian: Endian,
    at: usize,
    overran: bool,
}

/// Walks the notes in `data`, found at file offset `base`, as the loader does: `align` is the
/// segment's `p_align` (or section's alignment); like glibc, 8 means 8-byte padding and anything
/// else 4, padding counted from the start of each note (`ELF_NOTE_DESC_OFFSET`,
/// `ELF_NOTE_NEXT_OFFSET`). Trailing bytes shorter than a note header are padding. The walk stops
/// at the first note whose descriptor does not fit (some linkers put 4-byte-aligned notes in an
/// 8-byte-aligned segment), which [`NoteWalk::overran`] then says.
pub fn notes_in(data: &[u8], base: u64, align: u64, endian: Endian) -> NoteWalk<'_> {
    NoteWalk {
        data,
        base,
        align: if align == 8 { 8 } else { 4 },
        endian,
        at: 0,
        overran: false,
    }
}

impl NoteWalk<'_> {
    /// Whether the walk stopped at a note that does not fit in the bytes walked.
    pub fn overran(&self) -> bool {
        self.overran
    }
}

impl<'a> Iterator for NoteWalk<'a> {
    type Item = NoteRef<'a>;

    fn next(&mut self) -> Option<NoteRef<'a>> {
        if self.overran || self.data.len() - self.at < 12 {
            return None;
        }
        let note = &self.data[self.at..];
        let field = |i: usize| {
            let bytes = [
                note[4 * i],
                note[4 * i + 1],
                note[4 * i + 2],
                note[4 * i + 3],
            ];
            match self.endian {
                Endian::Little => u32::from_le_bytes(bytes),
                Endian::Big => u32::from_be_bytes(bytes),
            }
        };
        let (namesz, descsz, n_type) = (field(0) as usize, field(1) as usize, field(2));
        let pad = |n: usize| n.checked_add(self.align - 1).map(|n| n & !(self.align - 1));
        let fits = pad(12 + namesz).and_then(|desc_start| {
            let desc_end = desc_start.checked_add(descsz)?;
            (desc_end <= note.len()).then_some((desc_start, desc_end, pad(desc_end)?))
        });
        let Some((desc_start, desc_end, padded_end)) = fits else {
            self.overran = true;
            return None;
        };
        let size = padded_end.min(note.len());
        let found = NoteRef {
            offset: self.base + self.at as u64,
            name: &note[12..12 + namesz],
            n_type,
            desc: &note[desc_start..desc_end],
            padded_size: padded_end as u64,
            size: size as u64,
        };
        self.at += size;
        Some(found)
    }
}

impl From<NoteRef<'_>> for Note {
    fn from(note: NoteRef<'_>) -> Note {
        Note {
            owner: note.owner().to_vec(),
            n_type: note.n_type,
            desc: note.desc.to_vec(),
            offset: note.offset,
            size: note.size,
        }
    }
}
