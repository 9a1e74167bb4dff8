//! Free room after a load segment: file bytes nothing uses and addresses no other segment maps, into
//! which the segment can grow without moving anything.

use crate::image::{Image, Segment, PF_R, PF_W, PT_LOAD};

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

/// Room after every readable, non-writable load segment whose file and memory sizes are equal,
/// read-only ones first, then executable ones, each in file order. Writable segments are never
/// grown.
pub fn find(image: &Image, data: &[u8]) -> Vec<Gap> {
    let page = image.page_size();
    let mut gaps: Vec<(bool, Gap)> = Vec::new();
    for (index, load) in image.segments.iter().enumerate() {
        // Readable (the loader reads the notes in memory), not writable, no .bss to collide with.
        let readable = load.flags & PF_R != 0 && load.flags & PF_W == 0;
        if load.p_type != PT_LOAD || !readable || load.filesz != load.memsz {
            continue;
        }
        let offset = load.file_end();
        let vaddr = load.vaddr + load.memsz;
        let len = file_room(image, data, offset).min(address_room(image, index, load, vaddr, page));
        if len > 0 {
            let executable = load.flags & crate::image::PF_X != 0;
            gaps.push((
                executable,
                Gap {
                    load: index,
                    offset,
                    vaddr,
                    len,
                },
            ));
        }
    }
    gaps.sort_by_key(|(executable, gap)| (*executable, gap.offset));
    gaps.into_iter().map(|(_, gap)| gap).collect()
}

/// Zero bytes from `offset` up to the first byte any header, segment or section uses.
fn file_room(image: &Image, data: &[u8], offset: u64) -> u64 {
    let mut limit = data.len() as u64;
    let mut take = |start: u64, size: u64| {
        if size == 0 {
            return;
        }
        if start >= offset {
            limit = limit.min(start);
        } else if start + size > offset {
            limit = offset; // Something already spans the start: no room.
        }
    };
    take(0, if image.is_64 { 64 } else { 52 }); // The ELF header.
    take(image.phoff, image.phdr_table_size());
    take(image.shoff, image.shentsize * image.sections.len() as u64);
    for s in &image.segments {
        take(s.offset, s.filesz);
    }
    for s in &image.sections {
        take(s.offset, s.file_size());
    }
    data[offset as usize..limit as usize]
        .iter()
        .take_while(|&&b| b == 0)
        .count() as u64
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
