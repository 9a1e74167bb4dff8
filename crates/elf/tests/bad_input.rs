//! Malformed input gives an error, never a panic: every truncation of real files, corrupted header
//! fields, and arbitrary bytes. The files: programs made in memory for each ELF class and byte
//! order (with and without section headers), and this system's, where it has them (the Nix build
//! sandbox has none).

use ldcache_fixtures::fields::{Class, Eh, Fields, CLASSES};
use ldcache_fixtures::synth::{self, Options};
use proptest::prelude::*;

fn sample_files() -> Vec<Vec<u8>> {
    let host = [
        "/bin/true",
        "/lib/x86_64-linux-gnu/libc.so.6",
        "/lib64/ld-linux-x86-64.so.2",
    ]
    .iter()
    .filter_map(|path| std::fs::read(path).ok());
    let made = CLASSES.into_iter().flat_map(|class| {
        [true, false].map(|section_headers| {
            let options = Options {
                section_headers,
                ..Options::default()
            };
            synth::program(class, options)
        })
    });
    made.chain(host).collect()
}

#[test]
fn every_truncation_of_a_small_elf_is_an_error_or_a_subset() {
    for data in sample_files().into_iter().filter(|d| d.len() < 64 << 10) {
        let full = ldcache_elf::parse(&data).expect("the whole file parses");
        assert!(!full.dynamic.needed.is_empty());
        for len in 0..data.len() {
            // Either a clean error, or (cut past everything the reader needs) the same facts.
            if let Ok(info) = ldcache_elf::parse(&data[..len]) {
                assert_eq!(info.dynamic, full.dynamic, "truncated to {len}");
            }
        }
        assert_eq!(
            ldcache_elf::parse(&data[..10]).unwrap_err().to_string(),
            "not an ELF file"
        );
    }
}

#[test]
fn corrupted_header_and_program_header_fields_never_panic() {
    for data in sample_files() {
        let info = ldcache_elf::parse(&data).unwrap();
        let class = Class::of(&data);
        let phoff = data.eh_get(Eh::Phoff) as usize;
        let end = phoff + data.phnum() * class.phentsize();
        assert!(info.interpreter.is_some() || info.dynamic.soname.is_some());
        // Every byte of the ELF header and program header table, set to a few hostile values.
        for at in (0..class.ehsize()).chain(phoff..end) {
            for value in [0x00, 0x01, 0x7f, 0x80, 0xff] {
                let mut bad = data.clone();
                bad[at] = value;
                let _ = ldcache_elf::parse(&bad);
            }
        }
    }
}

#[test]
fn empty_and_non_elf_input() {
    assert_eq!(
        ldcache_elf::parse(b"").unwrap_err().to_string(),
        "not an ELF file"
    );
    assert_eq!(
        ldcache_elf::parse(b"#!/bin/sh\necho hi\n")
            .unwrap_err()
            .to_string(),
        "not an ELF file"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_bytes_after_an_elf_header_never_panic(
        class in 1u8..=2, data in 1u8..=2, tail in proptest::collection::vec(any::<u8>(), 0..600)
    ) {
        let mut bytes = vec![0x7f, b'E', b'L', b'F', class, data, 1, 0];
        bytes.extend_from_slice(&[0; 8]);
        bytes.extend_from_slice(&tail);
        let _ = ldcache_elf::parse(&bytes);
    }
}
