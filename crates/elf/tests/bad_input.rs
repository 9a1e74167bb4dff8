//! Malformed input gives an error, never a panic: every truncation of real files, corrupted header
//! fields, and arbitrary bytes.

use proptest::prelude::*;

fn sample_files() -> Vec<Vec<u8>> {
    [
        "/bin/true",
        "/lib/x86_64-linux-gnu/libc.so.6",
        "/lib64/ld-linux-x86-64.so.2",
    ]
    .iter()
    .map(|path| std::fs::read(path).expect("sample file exists"))
    .collect()
}

#[test]
fn every_truncation_of_a_small_elf_is_an_error_or_a_subset() {
    let data = std::fs::read("/bin/true").unwrap();
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

#[test]
fn corrupted_header_and_program_header_fields_never_panic() {
    for data in sample_files() {
        let info = ldcache_elf::parse(&data).unwrap();
        let phoff = u64::from_le_bytes(data[32..40].try_into().unwrap()) as usize;
        let phnum = u16::from_le_bytes(data[56..58].try_into().unwrap()) as usize;
        let end = phoff + phnum * 56;
        assert!(info.interpreter.is_some() || info.dynamic.soname.is_some());
        // Every byte of the ELF header and program header table, set to a few hostile values.
        for at in (0..64).chain(phoff..end) {
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
