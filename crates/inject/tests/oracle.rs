//! The oracle rejects what the injector must never do: each test damages a correct rewrite of a
//! real program in one way and expects the oracle to name it.

mod common;

use common::{get_u64, program_headers, section_headers};
use ldcache_inject::check::check;
use object::{Object, ObjectSection};

const PROGRAM: &str = "/usr/bin/true";

/// The program, and its rewrite with a note.
fn rewritten() -> (Vec<u8>, Vec<u8>) {
    common::rewritten(PROGRAM)
}

fn section_range(data: &[u8], name: &str) -> (usize, usize) {
    let file = object::File::parse(data).expect("parsed");
    let (offset, size) = file
        .section_by_name(name)
        .and_then(|s| s.file_range())
        .unwrap_or_else(|| panic!("{PROGRAM} has {name}"));
    (offset as usize, size as usize)
}

fn put_u64(data: &mut [u8], at: usize, value: u64) {
    data[at..at + 8].copy_from_slice(&value.to_le_bytes());
}

fn rejected(old: &[u8], new: &[u8], expected: &str) {
    match check(old, new) {
        Ok(()) => panic!("the oracle accepted a file where {expected}"),
        Err(message) => assert!(
            message.contains(expected),
            "expected a complaint about {expected:?}, got {message:?}"
        ),
    }
}

#[test]
fn a_changed_byte_of_code() {
    let (old, mut new) = rewritten();
    let (text, _) = section_range(&new, ".text");
    new[text + 16] ^= 0xff;
    rejected(
        &old,
        &new,
        "changed outside any part the injector may change",
    );
}

#[test]
fn a_changed_dynamic_entry() {
    let (old, mut new) = rewritten();
    let (dynamic, _) = section_range(&new, ".dynamic");
    new[dynamic + 8] ^= 1;
    rejected(
        &old,
        &new,
        "changed outside any part the injector may change",
    );
}

#[test]
fn section_headers_written_over_code() {
    let (old, mut new) = rewritten();
    let (shoff, shnum) = section_headers(&new);
    let table = new[shoff..shoff + 64 * shnum].to_vec();
    let (text, size) = section_range(&new, ".text");
    assert!(size >= table.len());
    new[text..text + table.len()].copy_from_slice(&table);
    put_u64(&mut new, 40, text as u64);
    rejected(
        &old,
        &new,
        "section header table moved over bytes the old file used",
    );
}

#[test]
fn a_moved_load_segment() {
    let (old, mut new) = rewritten();
    let (phoff, phnum) = program_headers(&new);
    let load = (0..phnum)
        .map(|i| phoff + 56 * i)
        .find(|&at| new[at] == 1 && get_u64(&new, at + 16) > 0)
        .expect("a load segment above address 0");
    let vaddr = get_u64(&new, load + 16);
    put_u64(&mut new, load + 16, vaddr + 0x1000);
    rejected(&old, &new, "load segment");
}

#[test]
fn a_resized_section() {
    let (old, mut new) = rewritten();
    let (shoff, _) = section_headers(&new);
    let size_field = shoff + 64 + 32; // section 1's sh_size
    let size = get_u64(&new, size_field);
    put_u64(&mut new, size_field, size + 1);
    rejected(&old, &new, "changed its header");
}

#[test]
fn a_renamed_section() {
    let (old, mut new) = rewritten();
    let (shoff, _) = section_headers(&new);
    let name_field = shoff + 64; // section 1's sh_name: skip the leading dot of its name
    let name = u32::from_le_bytes(new[name_field..name_field + 4].try_into().unwrap());
    new[name_field..name_field + 4].copy_from_slice(&(name + 1).to_le_bytes());
    rejected(&old, &new, "was renamed");
}

#[test]
fn program_headers_grown_over_a_section() {
    let (old, mut new) = rewritten();
    // One more entry, a PT_NULL, written over whatever follows the table (.interp).
    let (phoff, phnum) = program_headers(&new);
    let end = phoff + 56 * phnum;
    new[end..end + 56].fill(0);
    new[56..58].copy_from_slice(&(phnum as u16 + 1).to_le_bytes());
    rejected(&old, &new, "a section overlaps the ELF or program headers");
}

const PT_GNU_PROPERTY: u32 = 0x6474_e553;

/// The index and table offset of the program's PT_GNU_PROPERTY entry.
fn property_entry(data: &[u8]) -> (usize, usize) {
    let at = entry_where(data, PT_GNU_PROPERTY, |_| true);
    ((at - program_headers(data).0) / 56, at)
}

#[test]
fn a_property_segment_holding_its_note_made_null() {
    let (old, mut new) = rewritten();
    let (i, at) = property_entry(&new);
    new[at..at + 56].fill(0);
    rejected(&old, &new, &format!("program header {i} changed its type"));
}

/// What patchelf before 0.16 left: PT_GNU_PROPERTY on the program header table, which it grew
/// over `.note.gnu.property`. glibc finds no property note there and ignores the segment; the
/// injector turns it into PT_NULL, which the oracle accepts.
#[test]
fn a_stale_property_segment_may_become_null() {
    let mut old = std::fs::read(PROGRAM).expect("a system program");
    let (_, at) = property_entry(&old);
    let (phoff, _) = program_headers(&old);
    for field in [8, 16, 24] {
        put_u64(&mut old, at + field, phoff as u64); // offset, vaddr, paddr
    }
    let info = ldcache_elf::parse(&old).expect("parsed");
    let new = ldcache_inject::rewrite(
        &old,
        Some(&common::notes_for(&info).section(info.header.endian)),
    )
    .expect("rewritten, not refused")
    .expect("changed");
    check(&old, &new).expect("the oracle accepts it");
    let (phoff, phnum) = program_headers(&new);
    let types: Vec<u32> = (0..phnum)
        .map(|i| u32::from_le_bytes(new[phoff + 56 * i..][..4].try_into().unwrap()))
        .collect();
    assert!(!types.contains(&PT_GNU_PROPERTY), "{types:x?}");
}

/// The table offset of the first program header of type `p_type` with `filter` true.
fn entry_where(data: &[u8], p_type: u32, filter: impl Fn(usize) -> bool) -> usize {
    let (phoff, phnum) = program_headers(data);
    (0..phnum)
        .map(|i| phoff + 56 * i)
        .find(|&at| {
            u32::from_le_bytes(data[at..at + 4].try_into().unwrap()) == p_type && filter(at)
        })
        .unwrap_or_else(|| panic!("{PROGRAM} has a program header of type {p_type:#x}"))
}

const PT_LOAD: u32 = 1;
const PT_INTERP: u32 = 3;
const PT_NOTE: u32 = 4;

#[test]
fn a_load_segment_whose_memory_size_changed() {
    let (old, new) = rewritten();
    // The writable segment (with .bss): its memory size cut to its file size, or made huge.
    let at = entry_where(&new, PT_LOAD, |at| {
        get_u64(&new, at + 40) > get_u64(&new, at + 32)
    });
    for memsz in [get_u64(&new, at + 32), 64 << 30] {
        let mut damaged = new.clone();
        put_u64(&mut damaged, at + 40, memsz);
        rejected(&old, &damaged, "changed beyond growing into its padding");
    }
}

#[test]
fn a_load_segment_shrunk() {
    let (old, mut new) = rewritten();
    // The code segment, cut to 0x100 bytes in the file and in memory.
    let at = entry_where(&new, PT_LOAD, |at| new[at + 4] & 1 != 0);
    put_u64(&mut new, at + 32, 0x100);
    put_u64(&mut new, at + 40, 0x100);
    rejected(&old, &new, "shrank by something other than the notes");
}

#[test]
fn an_interpreter_or_property_address_changed_in_place() {
    let (old, new) = rewritten();
    for p_type in [PT_INTERP, PT_GNU_PROPERTY] {
        let mut damaged = new.clone();
        let at = entry_where(&damaged, p_type, |_| true);
        let vaddr = get_u64(&damaged, at + 16);
        put_u64(&mut damaged, at + 16, vaddr + 0x40);
        put_u64(&mut damaged, at + 24, vaddr + 0x40); // paddr follows, so only the address is wrong
        rejected(
            &old,
            &damaged,
            "its address changed although it did not move",
        );
    }
}

#[test]
fn the_notes_section_made_nobits() {
    let (old, mut new) = rewritten();
    let (shoff, shnum) = section_headers(&new);
    let last = shoff + 64 * (shnum - 1); // the notes' header is the last one
    new[last + 4..last + 8].copy_from_slice(&8u32.to_le_bytes()); // SHT_NOBITS
    put_u64(&mut new, last + 8, 0); // flags
    rejected(&old, &new, "is not an allocated note inside a PT_NOTE");
}

#[test]
fn a_note_section_moved_down_without_its_address() {
    let (old, mut new) = rewritten();
    // .note.ABI-tag's header says it moved 16 bytes down, its address unchanged: rejected, and
    // no arithmetic overflow on the way.
    let (offset, _) = section_range(&new, ".note.ABI-tag");
    let at = section_header(&new, ".note.ABI-tag");
    put_u64(&mut new, at + 24, offset as u64 - 16);
    rejected(&old, &new, "moved");
}

/// The header of section NAME: its table offset.
fn section_header(data: &[u8], name: &str) -> usize {
    let (shoff, shnum) = section_headers(data);
    let (offset, _) = section_range(data, name);
    (0..shnum)
        .map(|i| shoff + 64 * i)
        .find(|&at| get_u64(data, at + 24) == offset as u64)
        .unwrap_or_else(|| panic!("the header of {name}"))
}

#[test]
fn a_note_section_moved_onto_code_with_its_bytes() {
    let (old, mut new) = rewritten();
    // .note.ABI-tag's bytes copied over the start of .text and its header pointed there (address
    // included): its contents "moved" intact, the code is damaged.
    let (from, size) = section_range(&new, ".note.ABI-tag");
    let (text, _) = section_range(&new, ".text");
    let text_addr = get_u64(&new, section_header(&new, ".text") + 16);
    new.copy_within(from..from + size, text);
    let at = section_header(&new, ".note.ABI-tag");
    put_u64(&mut new, at + 16, text_addr);
    put_u64(&mut new, at + 24, text as u64);
    rejected(&old, &new, "moved onto section .text");
}

#[test]
fn a_note_segment_moved_onto_read_only_data_with_its_bytes() {
    let (old, mut new) = rewritten();
    // The first PT_NOTE's bytes copied over .rodata and the segment pointed there.
    let at = entry_where(&new, PT_NOTE, |_| true);
    let (offset, size) = (
        get_u64(&new, at + 8) as usize,
        get_u64(&new, at + 32) as usize,
    );
    let (rodata, _) = section_range(&new, ".rodata");
    let rodata_addr = get_u64(&new, section_header(&new, ".rodata") + 16);
    new.copy_within(offset..offset + size, rodata);
    put_u64(&mut new, at + 8, rodata as u64);
    put_u64(&mut new, at + 16, rodata_addr);
    put_u64(&mut new, at + 24, rodata_addr);
    rejected(&old, &new, "moved onto section .rodata");
}

#[test]
fn a_removed_note_left_in_place() {
    let (_, noted) = rewritten();
    let stripped = ldcache_inject::rewrite(&noted, None)
        .expect("removed")
        .expect("changed");
    check(&noted, &stripped).expect("the removal itself passes");
    // The note's bytes back where it was, though nothing points at them any more.
    let (offset, size) = section_range(&noted, ".note.nixos.ldcache");
    let mut damaged = stripped.clone();
    damaged[offset..offset + size].copy_from_slice(&noted[offset..offset + size]);
    rejected(&noted, &damaged, "was not zeroed");
}

// Found by tests/oracle_mutants.rs: single bit flips the oracle accepted and the program did not
// survive.

#[test]
fn a_load_segment_of_another_type() {
    let (old, mut new) = rewritten();
    let at = entry_where(&new, PT_LOAD, |at| new[at + 4] & 1 != 0);
    new[at] = 5; // PT_SHLIB
    rejected(&old, &new, "changed beyond growing into its padding");
}

#[test]
fn a_load_segment_of_code_made_null() {
    let (old, mut new) = rewritten();
    let at = entry_where(&new, PT_LOAD, |at| new[at + 4] & 1 != 0);
    new[at] = 0; // PT_NULL: as if it were the notes' own load segment, removed
    rejected(&old, &new, "changed beyond growing into its padding");
}

#[test]
fn the_program_header_table_entry_with_other_flags() {
    let (old, mut new) = rewritten();
    let at = entry_where(&new, 6, |_| true); // PT_PHDR
    new[at + 7] ^= 0x10; // p_flags
    rejected(
        &old,
        &new,
        "PT_PHDR does not describe the program header table",
    );
}

#[test]
fn a_note_segment_moved_without_its_sections_headers() {
    let (old, mut new) = rewritten();
    // The rewrite moved the 4-byte-aligned note group (.note.gnu.build-id, .note.ABI-tag) next
    // to the notes; .note.ABI-tag's header is put back at the old place, as if not updated.
    let (was, _) = section_range(&old, ".note.ABI-tag");
    let (now, _) = section_range(&new, ".note.ABI-tag");
    assert_ne!(was, now, "the rewrite moved the note group");
    let old_header = section_header(&old, ".note.ABI-tag");
    let at = section_header(&new, ".note.ABI-tag");
    new[at..at + 64].copy_from_slice(&old[old_header..old_header + 64]);
    rejected(&old, &new, "which it covered");
}
