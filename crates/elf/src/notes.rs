//! Walking the notes of a `PT_NOTE` segment, keeping where each one sits in the file.

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

/// Walks the notes in `data` (a `PT_NOTE` segment found at file offset `base`).
///
/// `align` is the segment's `p_align`; like glibc, 8 means 8-byte padding and anything else 4.
/// Like the loader's own walks, it stops at the first note that does not fit (some linkers put
/// 4-byte-aligned notes in an 8-byte-aligned segment): the notes before it are returned.
pub(crate) fn walk(
    data: &[u8],
    base: u64,
    align: u64,
    read_u32: impl Fn(&[u8]) -> u32,
) -> Vec<Note> {
    let align = if align == 8 { 8 } else { 4 };
    // As in glibc's ELF_NOTE_DESC_OFFSET / ELF_NOTE_NEXT_OFFSET: padding is counted from the start of
    // the note (whose header is 12 bytes), which matters for 8-byte aligned notes.
    let pad = |n: usize| n.checked_add(align - 1).map(|n| n & !(align - 1));
    let mut notes = Vec::new();
    let mut at = 0usize;
    // Trailing bytes shorter than a note header are padding, as in linkers' output.
    while data.len() - at >= 12 {
        let note = &data[at..];
        let field = |i: usize| read_u32(&note[4 * i..4 * i + 4]) as usize;
        let (namesz, descsz, n_type) = (field(0), field(1), field(2) as u32);
        let Some(desc_start) = pad(12 + namesz) else {
            break;
        };
        let desc_end = desc_start.saturating_add(descsz);
        if desc_end > note.len() {
            break;
        }
        // The last note's padding may be cut off by the segment end.
        let end = pad(desc_end).map_or(note.len(), |end| end.min(note.len()));
        let name = &note[12..12 + namesz];
        notes.push(Note {
            owner: name.strip_suffix(b"\0").unwrap_or(name).to_vec(),
            n_type,
            desc: note[desc_start..desc_end].to_vec(),
            offset: base + at as u64,
            size: end as u64,
        });
        at += end;
    }
    notes
}
