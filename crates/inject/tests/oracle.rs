//! The oracle rejects what the injector must never do: each test damages a correct rewrite in one
//! way and expects the oracle to name it, on ELF32 and ELF64, little and big endian (a program
//! made by `common::synth`, laid out as GNU ld lays out a PIE).

mod common;

use common::fields::{Class, Eh, Fields, Ph, Sh, CLASSES};
use common::synth::{self, Options};
use ldcache_inject::check::check;

const PT_NULL: u32 = 0;
const PT_LOAD: u32 = 1;
const PT_INTERP: u32 = 3;
const PT_NOTE: u32 = 4;
const PT_PHDR: u32 = 6;
const PT_GNU_PROPERTY: u32 = 0x6474_e553;
const PF_X: u64 = 1;
const PF_W: u64 = 2;

/// For each class: the program and its rewrite with a note.
fn rewrites() -> impl Iterator<Item = (Class, Vec<u8>, Vec<u8>)> {
    CLASSES.into_iter().map(|class| {
        let (old, new) = common::rewritten_synth(class);
        (class, old, new)
    })
}

fn rejected(class: Class, old: &[u8], new: &[u8], expected: &str) {
    let name = class.name();
    match check(old, new) {
        Ok(()) => panic!("{name}: the oracle accepted a file where {expected}"),
        Err(message) => assert!(
            message.contains(expected),
            "{name}: expected a complaint about {expected:?}, got {message:?}"
        ),
    }
}

const ELSEWHERE: &str = "changed outside any part the injector may change";

#[test]
fn a_changed_byte_of_code() {
    for (class, old, mut new) in rewrites() {
        let (text, _) = new.section_range(".text");
        new[text + 16] ^= 0xff;
        rejected(class, &old, &new, ELSEWHERE);
    }
}

#[test]
fn a_changed_dynamic_entry() {
    for (class, old, mut new) in rewrites() {
        let (dynamic, _) = new.section_range(".dynamic");
        new[dynamic + class.word() + 1] ^= 1; // the first entry's value
        rejected(class, &old, &new, ELSEWHERE);
    }
}

#[test]
fn section_headers_written_over_code() {
    for (class, old, mut new) in rewrites() {
        let shoff = new.eh_get(Eh::Shoff) as usize;
        let table = new[shoff..shoff + class.shentsize() * new.shnum()].to_vec();
        let (text, size) = new.section_range(".text");
        assert!(size >= table.len());
        new[text..text + table.len()].copy_from_slice(&table);
        new.eh_set(Eh::Shoff, text as u64);
        rejected(
            class,
            &old,
            &new,
            "section header table moved over bytes the old file used",
        );
    }
}

#[test]
fn a_moved_load_segment() {
    for (class, old, mut new) in rewrites() {
        let load = new.ph_find(PT_LOAD, |i| new.ph_get(i, Ph::Vaddr) > 0);
        let vaddr = new.ph_get(load, Ph::Vaddr);
        new.ph_set(load, Ph::Vaddr, vaddr + 0x1000);
        rejected(class, &old, &new, "load segment");
    }
}

#[test]
fn a_resized_section() {
    for (class, old, mut new) in rewrites() {
        let size = new.sh_get(1, Sh::Size);
        new.sh_set(1, Sh::Size, size + 1);
        rejected(class, &old, &new, "changed its header");
    }
}

#[test]
fn a_renamed_section() {
    for (class, old, mut new) in rewrites() {
        // Section 1's name loses its leading dot.
        let name = new.sh_get(1, Sh::Name);
        new.sh_set(1, Sh::Name, name + 1);
        rejected(class, &old, &new, "was renamed");
    }
}

#[test]
fn program_headers_grown_over_a_section() {
    for (class, old, mut new) in rewrites() {
        // One more entry, a PT_NULL, written over whatever follows the table (.interp).
        let end = new.ph_at(new.phnum());
        new[end..end + class.phentsize()].fill(0);
        let phnum = new.phnum() as u64;
        new.eh_set(Eh::Phnum, phnum + 1);
        rejected(
            class,
            &old,
            &new,
            "a section overlaps the ELF or program headers",
        );
    }
}

#[test]
fn a_property_segment_holding_its_note_made_null() {
    for (class, old, mut new) in rewrites() {
        let i = new.ph_find(PT_GNU_PROPERTY, |_| true);
        let at = new.ph_at(i);
        new[at..at + class.phentsize()].fill(0);
        rejected(
            class,
            &old,
            &new,
            &format!("program header {i} changed its type"),
        );
    }
}

/// What patchelf before 0.16 left: PT_GNU_PROPERTY on the program header table, which it grew
/// over `.note.gnu.property`. glibc finds no property note there and ignores the segment; the
/// injector turns it into PT_NULL, which the oracle accepts.
#[test]
fn a_stale_property_segment_may_become_null() {
    for class in CLASSES {
        let mut old = synth::program(class, Options::default());
        let i = old.ph_find(PT_GNU_PROPERTY, |_| true);
        let phoff = old.eh_get(Eh::Phoff);
        for field in [Ph::Offset, Ph::Vaddr, Ph::Paddr] {
            old.ph_set(i, field, phoff);
        }
        let (_, new) = common::with_notes(old);
        let types: Vec<u64> = (0..new.phnum()).map(|i| new.ph_get(i, Ph::Type)).collect();
        assert!(
            !types.contains(&PT_GNU_PROPERTY.into()),
            "{}: {types:x?}",
            class.name()
        );
    }
}

#[test]
fn a_load_segment_whose_memory_size_changed() {
    for (class, old, new) in rewrites() {
        // The writable segment (with .bss): its memory size cut to its file size, or made huge.
        let load = new.ph_find(PT_LOAD, |i| {
            new.ph_get(i, Ph::Memsz) > new.ph_get(i, Ph::Filesz)
        });
        let huge = if class.is_64 { 64 << 30 } else { 3 << 30 };
        for memsz in [new.ph_get(load, Ph::Filesz), huge] {
            let mut damaged = new.clone();
            damaged.ph_set(load, Ph::Memsz, memsz);
            rejected(
                class,
                &old,
                &damaged,
                "changed beyond growing into its padding",
            );
        }
    }
}

/// The load segment with the code.
fn code(data: &Vec<u8>) -> usize {
    data.ph_find(PT_LOAD, |i| data.ph_get(i, Ph::Flags) & PF_X != 0)
}

#[test]
fn a_load_segment_shrunk() {
    for (class, old, mut new) in rewrites() {
        // The code segment, cut to 0x100 bytes in the file and in memory.
        let load = code(&new);
        new.ph_set(load, Ph::Filesz, 0x100);
        new.ph_set(load, Ph::Memsz, 0x100);
        rejected(
            class,
            &old,
            &new,
            "shrank by something other than the notes",
        );
    }
}

#[test]
fn an_interpreter_or_property_address_changed_in_place() {
    for (class, old, new) in rewrites() {
        for p_type in [PT_INTERP, PT_GNU_PROPERTY] {
            let mut damaged = new.clone();
            let i = damaged.ph_find(p_type, |_| true);
            let vaddr = damaged.ph_get(i, Ph::Vaddr);
            damaged.ph_set(i, Ph::Vaddr, vaddr + 0x40);
            damaged.ph_set(i, Ph::Paddr, vaddr + 0x40); // only the address is wrong
                                                        // In ELF32 the property note moves with its note group.
            let moved = old.ph_get(i, Ph::Offset) != new.ph_get(i, Ph::Offset);
            let expected = if moved {
                "its new place is not mapped at its address"
            } else {
                "its address changed although it did not move"
            };
            rejected(class, &old, &damaged, expected);
        }
    }
}

#[test]
fn the_notes_section_made_nobits() {
    for (class, old, mut new) in rewrites() {
        let ours = new.sh_find(".note.nixos.ldcache");
        new.sh_set(ours, Sh::Type, 8); // SHT_NOBITS
        new.sh_set(ours, Sh::Flags, 0);
        rejected(
            class,
            &old,
            &new,
            "is not an allocated note inside a PT_NOTE",
        );
    }
}

#[test]
fn a_note_section_moved_down_without_its_address() {
    for (class, old, mut new) in rewrites() {
        // .note.ABI-tag's header says it moved 16 bytes down, its address unchanged: rejected,
        // and no arithmetic overflow on the way.
        let i = new.sh_find(".note.ABI-tag");
        let offset = new.sh_get(i, Sh::Offset);
        new.sh_set(i, Sh::Offset, offset - 16);
        rejected(class, &old, &new, "moved");
    }
}

#[test]
fn a_note_section_moved_onto_code_with_its_bytes() {
    for (class, old, mut new) in rewrites() {
        // .note.ABI-tag's bytes copied over the start of .text and its header pointed there
        // (address included): its contents "moved" intact, the code is damaged.
        let (from, size) = new.section_range(".note.ABI-tag");
        let text = new.sh_find(".text");
        let (text_offset, text_addr) = (new.sh_get(text, Sh::Offset), new.sh_get(text, Sh::Addr));
        new.copy_within(from..from + size, text_offset as usize);
        let i = new.sh_find(".note.ABI-tag");
        new.sh_set(i, Sh::Addr, text_addr);
        new.sh_set(i, Sh::Offset, text_offset);
        rejected(class, &old, &new, "moved onto section .text");
    }
}

#[test]
fn a_note_segment_moved_onto_read_only_data_with_its_bytes() {
    for (class, old, mut new) in rewrites() {
        // The first PT_NOTE's bytes copied over .rodata, the segment and the sections it covers
        // pointed there.
        let note = new.ph_find(PT_NOTE, |_| true);
        let (offset, size) = (new.ph_get(note, Ph::Offset), new.ph_get(note, Ph::Filesz));
        let rodata = new.sh_find(".rodata");
        let (to, addr) = (new.sh_get(rodata, Sh::Offset), new.sh_get(rodata, Sh::Addr));
        new.copy_within(offset as usize..(offset + size) as usize, to as usize);
        new.ph_set(note, Ph::Offset, to);
        new.ph_set(note, Ph::Vaddr, addr);
        new.ph_set(note, Ph::Paddr, addr);
        for i in 1..new.shnum() {
            let at = new.sh_get(i, Sh::Offset);
            if (offset..offset + size).contains(&at) {
                new.sh_set(i, Sh::Offset, at - offset + to);
                new.sh_set(i, Sh::Addr, at - offset + addr);
            }
        }
        rejected(class, &old, &new, "moved onto section .rodata");
    }
}

#[test]
fn a_removed_note_left_in_place() {
    for (class, _, noted) in rewrites() {
        let stripped = ldcache_inject::rewrite(&noted, None)
            .expect("removed")
            .expect("changed");
        check(&noted, &stripped).expect("the removal itself passes");
        // The note's bytes back where they were, though nothing points at them any more.
        let (offset, size) = noted.section_range(".note.nixos.ldcache");
        let mut damaged = stripped.clone();
        damaged[offset..offset + size].copy_from_slice(&noted[offset..offset + size]);
        rejected(class, &noted, &damaged, "was not zeroed");
    }
}

// Found by tests/oracle_mutants.rs: single bit flips the oracle accepted and the program did not
// survive.

#[test]
fn a_load_segment_of_another_type() {
    for (class, old, mut new) in rewrites() {
        let load = code(&new);
        new.ph_set(load, Ph::Type, 5); // PT_SHLIB
        rejected(class, &old, &new, "changed beyond growing into its padding");
    }
}

#[test]
fn a_load_segment_of_code_made_null() {
    for (class, old, mut new) in rewrites() {
        // PT_NULL: as if it were the notes' own load segment, removed.
        let load = code(&new);
        new.ph_set(load, Ph::Type, PT_NULL.into());
        rejected(class, &old, &new, "changed beyond growing into its padding");
    }
}

#[test]
fn the_program_header_table_entry_with_other_flags() {
    for (class, old, mut new) in rewrites() {
        let phdr = new.ph_find(PT_PHDR, |_| true);
        let flags = new.ph_get(phdr, Ph::Flags);
        new.ph_set(phdr, Ph::Flags, flags ^ 0x1000_0000);
        rejected(
            class,
            &old,
            &new,
            "PT_PHDR does not describe the program header table",
        );
    }
}

#[test]
fn a_note_segment_moved_without_its_sections_headers() {
    for (class, old, mut new) in rewrites() {
        // The rewrite moved the 4-byte-aligned note group next to the notes; .note.ABI-tag's
        // header is put back at the old place, as if not updated.
        let (was, _) = old.section_range(".note.ABI-tag");
        let (now, _) = new.section_range(".note.ABI-tag");
        assert_ne!(
            was,
            now,
            "{}: the rewrite moved the note group",
            class.name()
        );
        let (from, to) = (
            old.sh_at(old.sh_find(".note.ABI-tag")),
            new.sh_find(".note.ABI-tag"),
        );
        let to = new.sh_at(to);
        let size = class.shentsize();
        new[to..to + size].copy_from_slice(&old[from..from + size]);
        // Its symbol (__abi_tag) is put back too, as if the section had not moved.
        let (symtab, size) = old.section_range(".symtab");
        new[symtab..symtab + size].copy_from_slice(&old[symtab..symtab + size]);
        rejected(class, &old, &new, "which it covered");
    }
}

#[test]
fn a_writable_segment_made_executable() {
    for (class, old, mut new) in rewrites() {
        let load = new.ph_find(PT_LOAD, |i| new.ph_get(i, Ph::Flags) & PF_W != 0);
        let flags = new.ph_get(load, Ph::Flags);
        new.ph_set(load, Ph::Flags, flags | PF_X);
        rejected(class, &old, &new, "changed beyond growing into its padding");
    }
}

#[test]
fn a_dynamic_symbol_left_behind_by_a_moved_section() {
    for (class, mut old, mut new) in rewrites() {
        // .dynsym's second symbol made a definition in .note.ABI-tag, in both files: the
        // rewrite moved the section, the symbol still names the old place.
        let abi_tag = old.sh_find(".note.ABI-tag");
        let address = old.sh_get(abi_tag, Sh::Addr);
        let (dynsym, _) = old.section_range(".dynsym");
        let symbol = dynsym + if class.is_64 { 24 } else { 16 };
        let (value_at, shndx_at) = if class.is_64 { (8, 6) } else { (4, 14) };
        for file in [&mut old, &mut new] {
            class.put(file, symbol + value_at, class.word(), address);
            class.put(file, symbol + shndx_at, 2, abi_tag as u64);
        }
        rejected(
            class,
            &old,
            &new,
            "dynamic symbol 1 is defined in a moved section",
        );
    }
}

/// A program without section headers and without notes: the rewrite adds a `PT_NOTE` entry to
/// the program header table, which grows over `.interp` (moved next to the notes).
fn without_section_headers(class: Class, options: Options) -> (Vec<u8>, Vec<u8>) {
    let options = Options {
        section_headers: false,
        notes: false,
        ..options
    };
    common::with_notes(synth::program(class, options))
}

#[test]
fn program_headers_grown_over_the_hash_table_without_section_headers() {
    for class in CLASSES {
        let (old, mut new) = without_section_headers(class, Options::default());
        assert!(
            new.phnum() > old.phnum(),
            "{}: the table grew",
            class.name()
        );
        // Two more entries, PT_NULL, over what follows the grown table: the rest of the old
        // .interp and the start of .gnu.hash.
        let (end, more) = (new.ph_at(new.phnum()), 2 * class.phentsize());
        new[end..end + more].fill(0);
        let phnum = new.phnum() as u64;
        new.eh_set(Eh::Phnum, phnum + 2);
        let phdr = new.ph_find(PT_PHDR, |_| true);
        let size = new.ph_get(phdr, Ph::Filesz) + more as u64;
        new.ph_set(phdr, Ph::Filesz, size);
        new.ph_set(phdr, Ph::Memsz, size);
        rejected(
            class,
            &old,
            &new,
            "the program header table grew over bytes the old file used",
        );
    }
}

/// The injector's side of the same rule: with a short interpreter name and `.dynsym` right
/// after it, the zeros of `.dynsym`'s first symbol are not room for another program header.
#[test]
fn the_first_dynamic_symbol_is_not_room_for_program_headers() {
    for class in CLASSES {
        let options = Options {
            gnu_hash: false,
            interpreter: "/lib/ld.so.1",
            ..Options::default()
        };
        let old = synth::program(
            class,
            Options {
                section_headers: false,
                notes: false,
                ..options
            },
        );
        let info = ldcache_elf::parse(&old).expect("parsed");
        let notes = common::notes_for(&info).section(info.header.endian);
        match ldcache_inject::rewrite(&old, Some(&notes)) {
            Err(refusal) => assert!(
                refusal.kind() == ldcache_inject::RefusalKind::NoRoom
                    && refusal.reason() == "no room for more program headers",
                "{}: {refusal:?}",
                class.name()
            ),
            Ok(new) => {
                let new = new.expect("changed");
                check(&old, &new).expect("the oracle passes");
                let dynsym = old.ph_at(old.phnum()).next_multiple_of(class.word());
                panic!(
                    "{}: rewritten, .dynsym {}",
                    class.name(),
                    if old[dynsym..dynsym + 16] == new[dynsym..dynsym + 16] {
                        "kept"
                    } else {
                        "overwritten"
                    }
                );
            }
        }
    }
}

// One case for each remaining rule of the oracle's module documentation.

#[test]
fn an_elf_header_field_other_than_the_tables_changed() {
    for (class, old, mut new) in rewrites() {
        let entry = new.eh_get(Eh::Entry);
        new.eh_set(Eh::Entry, entry + 4);
        rejected(class, &old, &new, "ELF header byte");
    }
}

#[test]
fn the_program_header_table_of_a_program_moved() {
    for (class, old, mut new) in rewrites() {
        // A copy of the table past the end of the file, the header pointing at it.
        let (phoff, size) = (new.ph_at(0), new.phnum() * class.phentsize());
        let table = new[phoff..phoff + size].to_vec();
        let at = new.len().next_multiple_of(8);
        new.resize(at, 0);
        new.extend_from_slice(&table);
        new.eh_set(Eh::Phoff, at as u64);
        rejected(
            class,
            &old,
            &new,
            "the program header table of a program moved",
        );
    }
}

#[test]
fn the_section_name_table_lost_a_name() {
    for (class, old, mut new) in rewrites() {
        // Its last name cut short: the table no longer ends its names (the reader's check), or
        // lost what names used.
        let names = new.eh_get(Eh::Shstrndx) as usize;
        let size = new.sh_get(names, Sh::Size);
        new.sh_set(names, Sh::Size, size - 1);
        rejected(class, &old, &new, "section name table");
    }
}

#[test]
fn a_symbol_of_a_section_that_did_not_move_changed() {
    for (class, old, mut new) in rewrites() {
        // `main`, the second-last symbol, is in .text.
        let (symtab, size) = new.section_range(".symtab");
        let entry = if class.is_64 { 24 } else { 16 };
        let value = symtab + size - 2 * entry + if class.is_64 { 8 } else { 4 };
        new[value + class.word() - 1] ^= 0x10;
        rejected(
            class,
            &old,
            &new,
            "a symbol changed that is not in a moved section",
        );
    }
}

#[test]
fn a_load_segment_grown_over_bytes_that_were_not_padding() {
    for (class, mut old, new) in rewrites() {
        // The read-only segment grew over its padding; in the old file a byte there was data.
        let first = new.ph_find(PT_LOAD, |i| new.ph_get(i, Ph::Offset) == 0);
        let old_end = old.ph_get(first, Ph::Filesz) as usize;
        assert!(new.ph_get(first, Ph::Filesz) as usize > old_end + 8);
        old[old_end + 8] = 0x55;
        rejected(
            class,
            &old,
            &new,
            "a load segment grew over bytes that were not zero padding",
        );
    }
}

#[test]
fn an_added_program_header_of_another_type() {
    for class in CLASSES {
        // The appended PT_NOTE (the program has no note segment to join) made PT_DYNAMIC.
        let (old, mut new) = without_section_headers(class, Options::default());
        let added = new.phnum() - 1;
        assert_eq!(new.ph_get(added, Ph::Type), u64::from(PT_NOTE));
        new.ph_set(added, Ph::Type, 2);
        rejected(
            class,
            &old,
            &new,
            "a program header other than PT_NOTE or PT_LOAD was added",
        );
    }
}

#[test]
fn an_added_note_segment_not_mapped_at_its_address() {
    for class in CLASSES {
        let (old, mut new) = without_section_headers(class, Options::default());
        let added = new.phnum() - 1;
        let vaddr = new.ph_get(added, Ph::Vaddr);
        new.ph_set(added, Ph::Vaddr, vaddr + 0x10_0000);
        rejected(
            class,
            &old,
            &new,
            "a PT_NOTE is not mapped by a load segment at its address",
        );
    }
}
