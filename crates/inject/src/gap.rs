//! Free room after a load segment: file bytes nothing uses (or the end of the file) and addresses
//! no other segment maps, into which the segment can grow without moving anything.

use ldcache_elf::image::{Image, Segment, PF_R, PF_W, PF_X, PT_LOAD};

/// Room after load segment `load` (an index into `image.segments`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gap {
    pub load: usize,
    /// File offset where the segment's file bytes end and the room begins.
    pub offset: u64,
    /// The address of `offset` once loaded.
    pub vaddr: u64,
    /// How many bytes are free, in the file and in the address space.
    pub len: u64,
}

/// Room after every readable load segment whose file and memory sizes are equal (no `.bss` to
/// collide with): read-only ones first, then executable ones, then writable ones, each in file
/// order.
pub fn find(image: &Image, data: &[u8]) -> Vec<Gap> {
    let page = image.page_size();
    let mut gaps: Vec<(u8, Gap)> = Vec::new();
    for (index, load) in image.segments.iter().enumerate() {
        // Readable: the loader reads the notes in memory.
        let readable = load.flags & PF_R != 0;
        if load.p_type != PT_LOAD || !readable || load.filesz != load.memsz {
            continue;
        }
        let offset = load.file_end();
        let vaddr = load.vaddr + load.memsz;
        let len = file_room(image, data, offset).min(address_room(image, index, load, vaddr, page));
        if len > 0 {
            let rank = match (load.flags & PF_X != 0, load.flags & PF_W != 0) {
                (_, true) => 2,
                (true, false) => 1,
                (false, false) => 0,
            };
            gaps.push((
                rank,
                Gap {
                    load: index,
                    offset,
                    vaddr,
                    len,
                },
            ));
        }
    }
    gaps.sort_by_key(|(rank, gap)| (*rank, gap.offset));
    gaps.into_iter().map(|(_, gap)| gap).collect()
}

/// How far past its end a segment that ends the file may grow (the file grows with it): far more
/// than any note needs.
const PAST_THE_END: u64 = 1 << 24;

/// Zero bytes from `offset` up to the first byte any header, segment or section uses; past the
/// end of the file too when nothing used lies after `offset`.
fn file_room(image: &Image, data: &[u8], offset: u64) -> u64 {
    let mut limit = None;
    for (start, end) in used_ranges(image) {
        if start >= offset {
            limit = Some(limit.map_or(start, |l: u64| l.min(start)));
        } else if end > offset {
            return 0; // Something already spans the start: no room.
        }
    }
    let Some(tail) = data.get(offset as usize..limit.unwrap_or(data.len() as u64) as usize) else {
        return 0;
    };
    let zeros = tail.iter().take_while(|&&b| b == 0).count() as u64;
    if limit.is_none() && zeros == tail.len() as u64 {
        zeros + PAST_THE_END
    } else {
        zeros
    }
}

/// Addresses from `vaddr` up to where another load segment's pages begin. A following segment
/// mapped with the same offset-to-address difference shows the same file bytes, so its own start
/// is the limit; otherwise its first page is.
fn address_room(image: &Image, index: usize, load: &Segment, vaddr: u64, page: u64) -> u64 {
    let delta = load.vaddr.wrapping_sub(load.offset);
    let mut limit = u64::MAX;
    for (other_index, other) in image.segments.iter().enumerate() {
        if other.p_type != PT_LOAD || other_index == index || other.memsz == 0 {
            continue;
        }
        let other_end = other.vaddr + other.memsz;
        if other.vaddr < vaddr && other_end > load.vaddr {
            if other_end > vaddr {
                return 0; // Overlapping segments: leave the file alone.
            }
            // A segment below ending in our last page: fine, it lies before the room.
            continue;
        }
        if other.vaddr >= vaddr {
            let same_mapping = other.vaddr.wrapping_sub(other.offset) == delta;
            let start = if same_mapping {
                other.vaddr
            } else {
                other.vaddr & !(page - 1)
            };
            limit = limit.min(start);
        }
    }
    limit.saturating_sub(vaddr)
}

/// The first offset, aligned to `align`, of `len` zero bytes that no header, segment or section
/// uses, between two parts of the file that are used: room for a table that is not loaded, so the
/// file need not grow. Bytes past the last used one are never taken (data may be appended to a
/// file that no header describes), nor, if `spare_gaps`, the room after load segments that notes
/// may need later.
pub fn unused(image: &Image, data: &[u8], len: u64, align: u64, spare_gaps: bool) -> Option<u64> {
    let mut used = used_ranges(image);
    if spare_gaps {
        used.extend(
            find(image, data)
                .iter()
                .map(|g| (g.offset, g.offset + g.len)),
        );
    }
    used.sort_unstable();
    let mut from = 0;
    for (start, end) in used {
        if start > from {
            if let Some(at) = zero_run(data, from, start, len, align) {
                return Some(at);
            }
        }
        from = from.max(end);
    }
    None
}

/// Whether nothing uses the bytes `start..end` and those of them that `data` has are zero.
pub fn is_unused(image: &Image, data: &[u8], start: u64, end: u64) -> bool {
    let clear = used_ranges(image)
        .iter()
        .all(|&(from, to)| to <= start || from >= end);
    let present = start.min(data.len() as u64) as usize..end.min(data.len() as u64) as usize;
    clear && data[present].iter().all(|&b| b == 0)
}

/// The file ranges (start, end) of the ELF header, both header tables, every segment and every
/// section with contents.
fn used_ranges(image: &Image) -> Vec<(u64, u64)> {
    let section_table = image.shentsize * image.sections.len() as u64;
    let mut used = vec![
        (0, image.ehsize()),
        (image.phoff, image.phoff + image.phdr_table_size()),
        (image.shoff, image.shoff + section_table),
    ];
    let segments = image.segments.iter().map(|s| (s.offset, s.file_end()));
    let sections = image
        .sections
        .iter()
        .map(|s| (s.offset, s.offset + s.file_size()));
    used.extend(segments.chain(sections));
    used.retain(|(start, end)| end > start);
    used
}

/// The first aligned offset in `from..to` where `len` zero bytes of `data` begin.
fn zero_run(data: &[u8], from: u64, to: u64, len: u64, align: u64) -> Option<u64> {
    let to = to.min(data.len() as u64);
    let mut at = from.checked_next_multiple_of(align)?;
    while at.checked_add(len)? <= to {
        let window = &data[at as usize..(at + len) as usize];
        match window.iter().rposition(|&b| b != 0) {
            None => return Some(at),
            Some(busy) => at = (at + busy as u64 + 1).checked_next_multiple_of(align)?,
        }
    }
    None
}
