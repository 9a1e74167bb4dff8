//! What the injector tests share. Each test crate uses a part of it.

#![allow(dead_code)]

pub use ldcache_fixtures::{fields, synth};

use ldcache_note::{Cache, Computed, Entry, Fingerprint, Place, SearchTag};

/// The notes `ldcache embed` would compute if each needed library lived in its own store path.
pub fn notes_for(info: &ldcache_elf::ElfInfo) -> Computed {
    let mut entries: Vec<Entry> = info
        .dynamic
        .needed
        .iter()
        .map(|soname| Entry {
            soname: soname.clone(),
            places: vec![
                Place::Search("/run/opengl-driver/lib".into()),
                Place::File(format!(
                    "/nix/store/0123456789abcdfghijklmnpqrsvwxyz-{soname}/lib/{soname}"
                )),
            ],
        })
        .collect();
    // In the order the encoder writes them (by soname), so that a decoded note compares equal.
    entries.sort_by(|a, b| a.soname.cmp(&b.soname));
    Computed {
        cache: Cache { entries },
        fingerprint: Fingerprint::of(SearchTag::Runpath, "/nix/store/x/lib"),
    }
}

/// The program at `path`, and its rewrite with [`notes_for`]'s notes, which the oracle passes.
pub fn rewritten(path: &str) -> (Vec<u8>, Vec<u8>) {
    with_notes(std::fs::read(path).expect("a system program"))
}

/// [`synth::program`] for `class` (with section headers), and its rewrite with [`notes_for`]'s
/// notes, which the oracle passes.
pub fn rewritten_synth(class: fields::Class) -> (Vec<u8>, Vec<u8>) {
    with_notes(synth::program(class, synth::Options::default()))
}

/// `old`, and its rewrite with [`notes_for`]'s notes, which the oracle passes.
pub fn with_notes(old: Vec<u8>) -> (Vec<u8>, Vec<u8>) {
    let info = ldcache_elf::parse(&old).expect("parsed");
    let new = ldcache_inject::rewrite(&old, Some(&notes_for(&info).section(info.header.endian)))
        .expect("rewritten")
        .expect("changed");
    ldcache_inject::check::check(&old, &new).expect("the rewrite itself passes");
    (old, new)
}

pub fn get_u64(data: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(data[at..at + 8].try_into().unwrap())
}

/// Where the program header table starts and how many entries it has (ELF64 little endian).
pub fn program_headers(data: &[u8]) -> (usize, usize) {
    (
        get_u64(data, 32) as usize,
        u16::from_le_bytes([data[56], data[57]]) as usize,
    )
}

/// Where the section header table starts and how many entries it has (ELF64 little endian).
pub fn section_headers(data: &[u8]) -> (usize, usize) {
    (
        get_u64(data, 40) as usize,
        u16::from_le_bytes([data[60], data[61]]) as usize,
    )
}
