//! The oracle: does a rewritten file differ from the original only where the injector may change it?
//!
//! It works from the two files, not from what the injector says it did (but for [`check_within`],
//! which the injector's self-check uses: told the ranges it wrote, it compares only those). What it
//! guarantees, each rule where the code checks it:
//! 1. The ELF header keeps class, byte order, type and entry size; only table offsets and counts
//!    change (`check_header_fields`). A program header table moves only in a shared library, past
//!    the old end of the file, into a load segment that maps it (`check_moved_table`).
//! 2. Sections: the same ones, by index, this project's `.note.nixos.ldcache` apart, which must be
//!    an allocated note inside a `PT_NOTE`. Each keeps name, type, flags, size, link, info,
//!    alignment and entry size; only `.interp` and note sections move, with their bytes unchanged,
//!    to an address where a load segment maps the new place, onto no other section's bytes
//!    (`check_sections`). `.shstrtab` may only grow by appended names.
//! 3. `.symtab`: only the values of symbols of moved sections change, by the move; no `.dynsym`
//!    symbol is defined in a moved section (`check_symbols`).
//! 4. Load segments keep offset, address, flags and alignment; file and memory size change
//!    together and only without `.bss`: growing over zero padding (or past the old end of the
//!    file), readable, into addresses no other segment maps (`check_growth`); shrinking only by
//!    this project's notes that ended them. A load segment of the notes' own may be removed.
//! 5. `PT_PHDR` describes the table, wherever it is. `PT_INTERP`, `PT_NOTE` and `PT_GNU_PROPERTY`
//!    keep type, flags, alignment and contents (a `PT_NOTE` may gain, lose or replace this
//!    project's notes at its end), keep their address unless they move, and when they move, their
//!    address is where a load segment maps the new place, they cover only sections of their own
//!    kind and take the sections they covered along (`check_covered_range`,
//!    `check_sections_follow`). A `PT_GNU_PROPERTY` that holds no property note as glibc reads it
//!    may become `PT_NULL`. Every other program header is unchanged. Added ones (at the end of the
//!    table or in place of `PT_NULL`) are `PT_NOTE`, or one read-only `PT_LOAD` past the old end of
//!    the file and above every old segment's addresses; every written `PT_NOTE` is mapped by a
//!    load segment at its address. Without section headers, a program header table that grew in
//!    place took only the old places of moved `.interp` and note segments and zeros where nothing
//!    the dynamic section points at, and no segment, begins (`check_grown_table`).
//! 6. A moved section header table or `.shstrtab` took only zero bytes nothing used
//!    (`check_table_places`); the old places of moved pieces and of removed or replaced notes are
//!    zero wherever the new file puts nothing (`check_vacated`).
//! 7. Every other byte is identical: all but the ELF header, the header tables, `.shstrtab`, moved
//!    pieces (old and new places), this project's notes, grown padding, moved symbols' values and
//!    what lies past the old end of the file.
//!
//! Not guaranteed here: that the notes' contents are right (the note crate's codec and `compute`
//! do that), and, for files without section headers, where sections lay (only segments and the
//! tables the dynamic section points at are known).

use std::ops::Range;

use crate::SECTION_NAME;
use ldcache_elf::image::{
    Image, Segment, ET_DYN, NIXOS_NAME, PF_R, PT_GNU_PROPERTY, PT_INTERP, PT_LOAD, PT_NOTE,
    PT_NULL, PT_PHDR, SHF_ALLOC, SHT_DYNSYM, SHT_NOTE, SHT_SYMTAB,
};

/// Checks `new` against `old`; `Err` says what differs where it must not.
pub fn check(old: &[u8], new: &[u8]) -> Result<(), String> {
    check_within(old, new, std::slice::from_ref(&crate::WHOLE_FILE))
}

/// [`check`], told that `new` can differ from `old` only in `changed` (sorted, disjoint ranges)
/// and past the old end of the file: bytes elsewhere are not compared.
pub fn check_within(old: &[u8], new: &[u8], changed: &[Range<u64>]) -> Result<(), String> {
    let a = Image::parse(old).map_err(|e| format!("old file: {e}"))?;
    let b = Image::parse(new).map_err(|e| format!("new file: {e}"))?;
    if (a.is_64, a.big_endian, a.e_type, a.phentsize)
        != (b.is_64, b.big_endian, b.e_type, b.phentsize)
    {
        return Err("the ELF header changed beyond the table counts and offsets".into());
    }
    if a.phoff != b.phoff {
        check_moved_table(&b, old.len() as u64)?;
    }
    let mut free: Vec<Range<u64>> = Vec::new();
    let ehsize = if a.is_64 { 64 } else { 52 };
    free.push(0..ehsize);
    free.push(b.phoff..b.phoff + b.phdr_table_size());
    free.push(a.phoff..a.phoff + a.phdr_table_size());
    free.push(a.shoff..a.shoff + a.shentsize * a.sections.len() as u64);
    free.push(b.shoff..b.shoff + b.shentsize * b.sections.len() as u64);
    free.push(old.len() as u64..u64::MAX);
    if old[..ehsize as usize] != new[..ehsize as usize] {
        check_header_fields(&a, old, new)?;
    }

    check_sections(&a, old, &b, new, &mut free)?;
    check_segments(&a, &b, old, new, &mut free)?;
    check_table_places(&a, old, &b)?;
    check_grown_table(&a, old, &b)?;
    check_vacated(&a, old, &b, new)?;

    // Every other byte is the same.
    let len = old.len().min(new.len()) as u64;
    for range in changed {
        let end = range.end.min(len) as usize;
        let mut i = range.start.min(len) as usize;
        while let Some(at) = crate::next_difference(&old[..end], &new[..end], i) {
            let at = at as u64;
            match free.iter().find(|r| r.contains(&at)) {
                Some(range) => i = range.end.min(end as u64) as usize,
                None => {
                    return Err(format!(
                        "byte {at:#x} changed outside any part the injector may change"
                    ))
                }
            }
        }
    }
    Ok(())
}

/// The section header table and `.shstrtab`, when they moved, took only their old places or zero
/// bytes nothing used in the old file, and they overlap nothing the new file uses.
fn check_table_places(a: &Image, old: &[u8], b: &Image) -> Result<(), String> {
    let table =
        |image: &Image| image.shoff..image.shoff + image.shentsize * image.sections.len() as u64;
    let names = |image: &Image| {
        image
            .sections
            .get(image.shstrndx)
            .map_or(0..0, |s| s.offset..s.offset + s.file_size())
    };
    let old_used: Vec<Range<u64>> = used_ranges(a)
        .into_iter()
        .filter(|r| *r != names(a))
        .collect();
    let new_used = used_ranges(b);
    for (what, range) in [("section header table", table(b)), (".shstrtab", names(b))] {
        if range == table(a) || range == names(a) || range.is_empty() {
            continue;
        }
        let overlaps = |r: &Range<u64>| r.start < range.end && range.start < r.end;
        let kept = |at: u64| table(a).contains(&at) || names(a).contains(&at);
        let was_free = !old_used.iter().any(overlaps)
            && (range.start..range.end.min(old.len() as u64))
                .all(|at| old[at as usize] == 0 || kept(at));
        if !was_free {
            return Err(format!("the {what} moved over bytes the old file used"));
        }
        let others = new_used.iter().filter(|r| **r != range);
        if others
            .chain([&table(b)])
            .filter(|r| **r != range)
            .any(overlaps)
        {
            return Err(format!("the {what} overlaps what the new file uses"));
        }
    }
    Ok(())
}

/// Without section headers (with them, no section may overlap the table: `check_sections`), a
/// program header table that grew in place took only the old places of `.interp` and note
/// segments that moved, and zero bytes where nothing the loader reads begins
/// (`Image::anything_starts_in`).
fn check_grown_table(a: &Image, old: &[u8], b: &Image) -> Result<(), String> {
    let (old_end, new_end) = (a.phoff + a.phdr_table_size(), b.phoff + b.phdr_table_size());
    if !a.sections.is_empty() || a.phoff != b.phoff || new_end <= old_end {
        return Ok(());
    }
    let vacated: Vec<Range<u64>> = a
        .segments
        .iter()
        .zip(&b.segments)
        .filter(|(s, t)| {
            matches!(s.p_type, PT_INTERP | PT_NOTE | PT_GNU_PROPERTY) && t.offset != s.offset
        })
        .map(|(s, _)| s.offset..s.file_end())
        .collect();
    let end = new_end.min(old.len() as u64);
    let mut at = old_end;
    while at < end {
        if let Some(place) = vacated.iter().find(|r| r.contains(&at)) {
            at = place.end;
            continue;
        }
        let hole_end = vacated
            .iter()
            .map(|r| r.start)
            .filter(|&start| start > at)
            .fold(end, u64::min);
        let zeros = old[at as usize..hole_end as usize].iter().all(|&b| b == 0);
        if !zeros || a.anything_starts_in(old, at, hole_end) {
            return Err(format!(
                "the program header table grew over bytes the old file used ({at:#x}..{hole_end:#x})"
            ));
        }
        at = hole_end;
    }
    Ok(())
}

/// The file ranges of the ELF header, the program header table, every segment and every section
/// with contents.
fn used_ranges(image: &Image) -> Vec<Range<u64>> {
    let mut used = vec![
        0..image.ehsize(),
        image.phoff..image.phoff + image.phdr_table_size(),
    ];
    used.extend(image.segments.iter().map(|s| s.offset..s.file_end()));
    used.extend(
        image
            .sections
            .iter()
            .map(|s| s.offset..s.offset + s.file_size()),
    );
    used.retain(|r| !r.is_empty());
    used
}

/// Only `e_phnum`, `e_shoff`, `e_shnum` may differ in the ELF header.
fn check_header_fields(a: &Image, old: &[u8], new: &[u8]) -> Result<(), String> {
    use ldcache_elf::image::HeaderField::*;
    let mut allowed = Vec::new();
    for field in [Phoff, Phnum, Shoff, Shnum] {
        let (at, size) = a.header_field(field);
        allowed.push(at..at + size as u64);
    }
    let ehsize = if a.is_64 { 64 } else { 52 };
    for at in 0..ehsize {
        if old[at as usize] != new[at as usize] && !allowed.iter().any(|r| r.contains(&at)) {
            return Err(format!("ELF header byte {at} changed"));
        }
    }
    Ok(())
}

/// A section that moved: its old file range and the address shift.
struct Moved {
    old: Range<u64>,
    old_addr: u64,
    new_addr: u64,
}

fn check_sections(
    a: &Image,
    old: &[u8],
    b: &Image,
    new: &[u8],
    free: &mut Vec<Range<u64>>,
) -> Result<(), String> {
    let ours = |image: &Image, data: &[u8], i: usize| image.section_name(data, i) == SECTION_NAME;
    let old_sections: Vec<usize> = (0..a.sections.len())
        .filter(|&i| !ours(a, old, i))
        .collect();
    let new_sections: Vec<usize> = (0..b.sections.len())
        .filter(|&i| !ours(b, new, i))
        .collect();
    if old_sections != new_sections[..old_sections.len().min(new_sections.len())]
        || old_sections.len() != new_sections.len()
    {
        return Err("sections were added, removed or renumbered".into());
    }
    for i in 0..b.sections.len() {
        if ours(b, new, i) {
            let s = b.sections[i];
            // A note the loader reads: allocated, of type note, inside a PT_NOTE.
            let covered = b
                .segments
                .iter()
                .any(|p| p.p_type == PT_NOTE && p.contains_file_range(s.offset, s.size));
            if s.sh_type != SHT_NOTE || s.flags & SHF_ALLOC == 0 || !covered {
                return Err(format!(
                    "section {i} (the notes) is not an allocated note inside a PT_NOTE"
                ));
            }
            free.push(s.offset..s.offset + s.size);
        }
    }
    for i in 0..a.sections.len() {
        if ours(a, old, i) {
            let s = a.sections[i];
            free.push(s.offset..s.offset + s.size);
        }
    }
    let mut moved: Vec<Moved> = Vec::new();
    for &i in &old_sections {
        let (s, t) = (a.sections[i], b.sections[i]);
        if a.section_name(old, i) != b.section_name(new, i) {
            return Err(format!("section {i} was renamed"));
        }
        let same_shape = (
            s.sh_type,
            s.flags,
            s.size,
            s.link,
            s.info,
            s.addralign,
            s.entsize,
        ) == (
            t.sh_type,
            t.flags,
            t.size,
            t.link,
            t.info,
            t.addralign,
            t.entsize,
        );
        if i == a.shstrndx {
            // The name table may grow by appended names and move.
            let kept = &old[s.offset as usize..][..s.size as usize];
            if t.size < s.size || &new[t.offset as usize..][..s.size as usize] != kept {
                return Err("the section name table lost names".into());
            }
            free.push(s.offset..s.offset + s.size);
            free.push(t.offset..t.offset + t.size);
            continue;
        }
        if !same_shape {
            return Err(format!(
                "section {} changed its header",
                String::from_utf8_lossy(a.section_name(old, i))
            ));
        }
        if s.offset == t.offset && s.addr == t.addr {
            continue;
        }
        let movable =
            s.sh_type == ldcache_elf::image::SHT_NOTE || a.section_name(old, i) == b".interp";
        if !movable {
            return Err(format!(
                "section {} moved",
                String::from_utf8_lossy(a.section_name(old, i))
            ));
        }
        // Onto bytes no other section has in the new file.
        if let Some(j) = section_over(b, t.offset..t.offset + t.file_size(), |j| j == i) {
            return Err(format!(
                "section {} moved onto section {}",
                String::from_utf8_lossy(a.section_name(old, i)),
                String::from_utf8_lossy(b.section_name(new, j))
            ));
        }
        let size = s.file_size() as usize;
        if old[s.offset as usize..][..size] != new[t.offset as usize..][..size] {
            return Err(format!(
                "section {} changed when it moved",
                String::from_utf8_lossy(a.section_name(old, i))
            ));
        }
        if t.addr.wrapping_sub(t.offset) != section_delta(b, &t)
            || s.addr.wrapping_sub(s.offset) != section_delta(a, &s)
        {
            return Err("a moved section's address does not follow its offset".into());
        }
        free.push(s.offset..s.offset + s.size);
        free.push(t.offset..t.offset + t.size);
        moved.push(Moved {
            old: s.offset..s.offset + s.size,
            old_addr: s.addr,
            new_addr: t.addr,
        });
    }
    check_symbols(a, old, new, &moved, free)
}

/// The offset-to-address difference of the load segment holding an allocated section.
fn section_delta(image: &Image, s: &ldcache_elf::image::Section) -> u64 {
    image
        .segments
        .iter()
        .find(|l| l.p_type == PT_LOAD && l.contains_file_range(s.offset, s.size.max(1)))
        .map_or(u64::MAX, |l| l.vaddr.wrapping_sub(l.offset))
}

/// `.symtab` entries may change only in the value of symbols of moved sections, by the move.
/// `.dynsym` never changes, so no dynamic symbol may be defined in a moved section.
fn check_symbols(
    a: &Image,
    old: &[u8],
    new: &[u8],
    moved: &[Moved],
    free: &mut Vec<Range<u64>>,
) -> Result<(), String> {
    let (entsize, value_at, shndx_at) = if a.is_64 {
        (24u64, 8u64, 6u64)
    } else {
        (16, 4, 14)
    };
    let word = a.word();
    let shndx = |at: u64| a.get(&old[(at + shndx_at) as usize..(at + shndx_at + 2) as usize]);
    for table in a.sections.iter().filter(|s| s.sh_type == SHT_DYNSYM) {
        for entry in 0..table.size / entsize {
            let section = a
                .sections
                .get(shndx(table.offset + entry * entsize) as usize);
            if let Some(section) = section.filter(|s| moved.iter().any(|m| m.old.start == s.offset))
            {
                return Err(format!(
                    "dynamic symbol {entry} is defined in a moved section (at {:#x})",
                    section.offset
                ));
            }
        }
    }
    for table in a.sections.iter().filter(|s| s.sh_type == SHT_SYMTAB) {
        for entry in 0..table.size / entsize {
            let at = table.offset + entry * entsize;
            let value_range = at + value_at..at + value_at + word;
            let (o, n) = (
                &old[value_range.start as usize..value_range.end as usize],
                &new[value_range.start as usize..value_range.end as usize],
            );
            if o == n {
                continue;
            }
            let section = a
                .sections
                .get(shndx(at) as usize)
                .ok_or("symbol of a section that does not exist")?;
            let piece = moved
                .iter()
                .find(|m| m.old.start == section.offset)
                .ok_or("a symbol changed that is not in a moved section")?;
            if a.get(n)
                != a.get(o)
                    .wrapping_sub(piece.old_addr)
                    .wrapping_add(piece.new_addr)
            {
                return Err("a symbol of a moved section did not follow it".into());
            }
            free.push(value_range);
        }
    }
    Ok(())
}

fn check_segments(
    a: &Image,
    b: &Image,
    old: &[u8],
    new: &[u8],
    free: &mut Vec<Range<u64>>,
) -> Result<(), String> {
    let ours_old = note_sections(a, old);
    let ours_new = note_sections(b, new);
    free.extend(ours_old.iter().chain(&ours_new).cloned());
    for (i, s) in a.segments.iter().enumerate() {
        let Some(t) = b.segments.get(i) else {
            return Err("a program header was removed".into());
        };
        match s.p_type {
            // A load segment of the notes' own (holding nothing else), removed.
            PT_LOAD if t.p_type == PT_NULL && within(&ours_old, s.offset..s.file_end()) => {}
            PT_LOAD => {
                let same = (s.p_type, s.offset, s.vaddr, s.paddr, s.flags, s.align)
                    == (t.p_type, t.offset, t.vaddr, t.paddr, t.flags, t.align);
                // File and memory size change together, and only without `.bss`.
                let sizes = if t.filesz == s.filesz {
                    t.memsz == s.memsz
                } else {
                    t.filesz == t.memsz && s.filesz == s.memsz
                };
                if !same || !sizes {
                    return Err(format!(
                        "load segment {i} changed beyond growing into its padding"
                    ));
                }
                if t.filesz > s.filesz {
                    let added = s.file_end()..t.file_end();
                    check_growth(b, i, old, new, added.clone())?;
                    free.push(added);
                }
                // It shrinks only by notes of this project that ended it (their removal).
                if t.filesz < s.filesz && !within(&ours_old, t.file_end()..s.file_end()) {
                    return Err(format!(
                        "load segment {i} shrank by something other than the notes"
                    ));
                }
            }
            PT_PHDR => {
                // It describes the table, wherever that now is, mapped at its address; nothing
                // else about it changes.
                let kept = (t.p_type, t.flags, t.align, t.paddr.wrapping_sub(t.vaddr))
                    == (s.p_type, s.flags, s.align, s.paddr.wrapping_sub(s.vaddr));
                if !kept
                    || t.offset != b.phoff
                    || t.filesz != b.phdr_table_size()
                    || t.memsz != t.filesz
                    || !b.maps(t)
                {
                    return Err("PT_PHDR does not describe the program header table".into());
                }
            }
            PT_NOTE | PT_INTERP | PT_GNU_PROPERTY => {
                if t.p_type == PT_NULL
                    && s.p_type == PT_NOTE
                    && within(&ours_old, s.offset..s.file_end())
                {
                    continue; // A note segment of its own, removed.
                }
                if t.p_type == PT_NULL
                    && s.p_type == PT_GNU_PROPERTY
                    && !a.holds_property_note(old, s)
                {
                    continue; // One the loader ignores: ignored as PT_NULL too.
                }
                if t.p_type != s.p_type || t.flags != s.flags || t.align != s.align {
                    return Err(format!(
                        "program header {i} changed its type, flags or alignment"
                    ));
                }
                check_covered_range(b, old, new, s, t, &ours_old, &ours_new)
                    .map_err(|e| format!("program header {i}: {e}"))?;
                if t.offset != s.offset {
                    check_sections_follow(a, b, s, t, &ours_old)
                        .map_err(|e| format!("program header {i}: {e}"))?;
                    free.push(s.offset..s.file_end());
                    free.push(t.offset..t.file_end());
                }
            }
            // Checked below with the added entries.
            PT_NULL => {}
            _ => {
                if s != t {
                    return Err(format!("program header {i} (type {:#x}) changed", s.p_type));
                }
            }
        }
    }
    let old_top = a
        .segments
        .iter()
        .filter(|s| s.p_type == PT_LOAD)
        .map(|s| s.vaddr + s.memsz)
        .max()
        .unwrap_or(0);
    // Entries added at the end of the table or in place of PT_NULL ones.
    let added = b
        .segments
        .iter()
        .enumerate()
        .filter(|(i, _)| a.segments.get(*i).is_none_or(|s| s.p_type == PT_NULL));
    for (_, t) in added {
        match t.p_type {
            PT_NULL | PT_NOTE => {}
            // A load segment of the notes' own: read-only, past the old end of the file and above
            // every old segment's addresses, mapped at an address congruent with its offset.
            PT_LOAD => {
                let sound = t.flags == PF_R
                    && t.offset >= old.len() as u64
                    && t.vaddr >= old_top
                    && t.align.is_power_of_two()
                    && t.vaddr % t.align == t.offset % t.align
                    && t.filesz == t.memsz;
                if !sound {
                    return Err(
                        "an added load segment is not a read-only one past everything".into(),
                    );
                }
            }
            _ => return Err("a program header other than PT_NOTE or PT_LOAD was added".into()),
        }
    }
    // Every note segment the injector wrote lies in a load segment, so the loader sees it in memory.
    let written = b
        .segments
        .iter()
        .enumerate()
        .filter(|(i, t)| a.segments.get(*i) != Some(t))
        .map(|(_, t)| t);
    for t in written.filter(|t| t.p_type == PT_NOTE && t.filesz > 0) {
        if !b.maps(t) {
            return Err("a PT_NOTE is not mapped by a load segment at its address".into());
        }
    }
    Ok(())
}

/// A load segment grew over bytes that were zero padding, past the end of no file, and into no
/// address another load segment maps (nor its first page, when that one maps other file bytes).
fn check_growth(
    b: &Image,
    index: usize,
    old: &[u8],
    new: &[u8],
    added: Range<u64>,
) -> Result<(), String> {
    if added.end > new.len() as u64 {
        return Err("a load segment grew past the end of the file".into());
    }
    let was_padding = old
        .get(added.start as usize..added.end.min(old.len() as u64) as usize)
        .is_some_and(|bytes| bytes.iter().all(|&b| b == 0));
    if !was_padding {
        return Err("a load segment grew over bytes that were not zero padding".into());
    }
    let grown = b.segments[index];
    if grown.flags & PF_R == 0 {
        return Err("a load segment that is not readable grew".into());
    }
    let delta = grown.vaddr.wrapping_sub(grown.offset);
    let page = b.page_size();
    let added_addresses = added.start.wrapping_add(delta)..added.end.wrapping_add(delta);
    for (i, other) in b.segments.iter().enumerate() {
        if other.p_type != PT_LOAD || i == index || other.memsz == 0 {
            continue;
        }
        let start = if other.vaddr.wrapping_sub(other.offset) == delta {
            other.vaddr
        } else {
            other.vaddr & !(page - 1)
        };
        if start < added_addresses.end && other.vaddr + other.memsz > added_addresses.start {
            return Err("a load segment grew into addresses another one maps".into());
        }
    }
    Ok(())
}

/// The file ranges of this project's notes: sections named `.note.nixos.ldcache`, and (for files
/// without section headers) the `NixOS` notes found walking the `PT_NOTE` segments.
fn note_sections(image: &Image, data: &[u8]) -> Vec<Range<u64>> {
    let mut ranges: Vec<Range<u64>> = (0..image.sections.len())
        .filter(|&i| image.section_name(data, i) == SECTION_NAME)
        .map(|i| image.sections[i].offset..image.sections[i].offset + image.sections[i].size)
        .collect();
    for segment in image
        .segments
        .iter()
        .filter(|s| s.p_type == PT_NOTE && s.align <= 4)
    {
        for note in image.notes(data, segment.offset..segment.file_end()) {
            let end = note.offset + note.padded_size;
            if note.name == NIXOS_NAME && end <= segment.file_end() {
                ranges.push(note.offset..end);
            }
        }
    }
    ranges
}

/// The length of `segment`'s contents before the run of this project's notes (`ours`) that ends
/// it: all of it when no such note ends it.
fn foreign_len(segment: &Segment, ours: &[Range<u64>]) -> u64 {
    let mut end = segment.file_end();
    while let Some(note) = ours
        .iter()
        .find(|r| r.start >= segment.offset && r.start < end && r.end >= end)
    {
        end = note.start;
    }
    end - segment.offset
}

/// The first section of `image` with file bytes in `range`, those `allowed` apart.
fn section_over(
    image: &Image,
    range: Range<u64>,
    allowed: impl Fn(usize) -> bool,
) -> Option<usize> {
    (0..image.sections.len()).find(|&j| {
        let other = &image.sections[j];
        let end = other.offset + other.file_size();
        other.file_size() > 0 && other.offset < range.end && range.start < end && !allowed(j)
    })
}

/// Whether `range` is covered by `ranges` (adjacent ones together).
fn within(ranges: &[Range<u64>], range: Range<u64>) -> bool {
    let mut at = range.start;
    while at < range.end {
        match ranges.iter().find(|r| r.start <= at && at < r.end) {
            Some(r) => at = r.end,
            None => return false,
        }
    }
    true
}

/// A `PT_INTERP`, `PT_NOTE` or `PT_GNU_PROPERTY` segment keeps its contents, wherever it now is; a
/// `PT_NOTE` may also gain, lose or replace this project's notes at its end. Its address is where
/// the load segment holding it maps it.
fn check_covered_range(
    b: &Image,
    old: &[u8],
    new: &[u8],
    s: &Segment,
    t: &Segment,
    ours_old: &[Range<u64>],
    ours_new: &[Range<u64>],
) -> Result<(), String> {
    let kept = foreign_len(s, ours_old);
    if kept != foreign_len(t, ours_new) {
        return Err("it grew or shrank by something other than the notes".into());
    }
    if old[s.offset as usize..][..kept as usize] != new[t.offset as usize..][..kept as usize] {
        return Err("its contents changed".into());
    }
    if t.paddr.wrapping_sub(t.vaddr) != s.paddr.wrapping_sub(s.vaddr) {
        return Err("its physical address does not follow".into());
    }
    // glibc reads PT_GNU_PROPERTY (and the kernel PT_INTERP's neighbours) by address.
    if t.offset == s.offset && t.vaddr != s.vaddr {
        return Err("its address changed although it did not move".into());
    }
    if t.memsz.wrapping_sub(t.filesz) != s.memsz.wrapping_sub(s.filesz) {
        return Err("its memory size does not follow its file size".into());
    }
    if t.filesz > 0 && t.offset != s.offset && !b.maps(t) {
        return Err("its new place is not mapped at its address".into());
    }
    // Moved, it covers sections of its own kind only: notes, or `.interp`.
    if t.offset != s.offset {
        let own_kind = |j: usize| match t.p_type {
            PT_INTERP => b.section_name(new, j) == b".interp",
            _ => b.sections[j].sh_type == SHT_NOTE,
        };
        if let Some(j) = section_over(b, t.offset..t.file_end(), own_kind) {
            return Err(format!(
                "it moved onto section {}",
                String::from_utf8_lossy(b.section_name(new, j))
            ));
        }
    }
    Ok(())
}

/// A moved segment takes the sections it covered along, to the same place within it: their
/// headers must say so (this project's notes apart, which may be replaced).
fn check_sections_follow(
    a: &Image,
    b: &Image,
    s: &Segment,
    t: &Segment,
    ours_old: &[Range<u64>],
) -> Result<(), String> {
    for (j, section) in a.sections.iter().enumerate() {
        let range = section.offset..section.offset + section.file_size();
        if section.file_size() == 0
            || !s.contains_file_range(section.offset, section.file_size())
            || within(ours_old, range)
        {
            continue;
        }
        let follows = b
            .sections
            .get(j)
            .is_some_and(|moved| moved.offset.wrapping_sub(t.offset) == section.offset - s.offset);
        if !follows {
            return Err(format!("it moved without section {j}, which it covered"));
        }
    }
    Ok(())
}

/// What moved away, and this project's notes that were removed or replaced, left zero bytes
/// wherever the new file puts nothing (no header table, section or segment contents).
fn check_vacated(a: &Image, old: &[u8], b: &Image, new: &[u8]) -> Result<(), String> {
    let mut vacated = note_sections(a, old);
    for (s, t) in a.sections.iter().zip(&b.sections) {
        if s.file_size() > 0 && t.offset != s.offset {
            vacated.push(s.offset..s.offset + s.file_size());
        }
    }
    for (s, t) in a.segments.iter().zip(&b.segments) {
        let covering = matches!(s.p_type, PT_NOTE | PT_INTERP | PT_GNU_PROPERTY);
        if covering && s.filesz > 0 && (t.p_type != s.p_type || t.offset != s.offset) {
            vacated.push(s.offset..s.file_end());
        }
    }
    let mut used = vec![
        0..b.ehsize(),
        b.phoff..b.phoff + b.phdr_table_size(),
        b.shoff..b.shoff + b.shentsize * b.sections.len() as u64,
    ];
    used.extend(
        b.sections
            .iter()
            .filter(|s| s.file_size() > 0)
            .map(|s| s.offset..s.offset + s.file_size()),
    );
    used.extend(
        b.segments
            .iter()
            .filter(|s| !matches!(s.p_type, PT_LOAD | PT_NULL) && s.filesz > 0)
            .map(|s| s.offset..s.file_end()),
    );
    for range in vacated {
        for at in range.start..range.end.min(new.len() as u64) {
            if new[at as usize] != 0 && !used.iter().any(|u| u.contains(&at)) {
                return Err(format!(
                    "byte {at:#x}, in the old place of a moved or removed piece, was not zeroed"
                ));
            }
        }
    }
    Ok(())
}

/// The program header table may move only in a shared library (no interpreter: the kernel never
/// maps it), past the old end of the file, into a load segment that maps it at its address.
fn check_moved_table(b: &Image, old_len: u64) -> Result<(), String> {
    if b.e_type != ET_DYN || b.segments.iter().any(|s| s.p_type == PT_INTERP) {
        return Err("the program header table of a program moved".into());
    }
    let size = b.phdr_table_size();
    let mapped = b
        .segments
        .iter()
        .any(|l| l.p_type == PT_LOAD && l.contains_file_range(b.phoff, size));
    if b.phoff < old_len || !mapped {
        return Err("the program header table moved somewhere else than a new load segment".into());
    }
    Ok(())
}
