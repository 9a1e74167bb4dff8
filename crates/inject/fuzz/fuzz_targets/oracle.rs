//! The oracle's own fuzz target: a correct rewrite of a real program, damaged as the input says
//! (pairs of a position and a byte to xor there, positions in the ELF header and the program and
//! section header tables half of the time, where the oracle allows most changes). Every damaged
//! file the oracle accepts must run as the original does (`--version`: same output and status);
//! coverage leads the fuzzer into the oracle's rules, toward what they let through.

#![no_main]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

use ldcache_inject::check::check;
use ldcache_note::{Cache, Computed, Entry, Fingerprint, Place, SearchTag};
use libfuzzer_sys::fuzz_target;

const PROGRAM: &str = "/usr/bin/true";

struct Subject {
    old: Vec<u8>,
    new: Vec<u8>,
    /// Where the headers lie in `new`: the ELF header and program header table, the section
    /// header table.
    headers: [std::ops::Range<usize>; 2],
    expected: (Option<i32>, Vec<u8>),
    dir: tempfile::TempDir,
}

fn run(path: &Path) -> (Option<i32>, Vec<u8>) {
    let output = Command::new(path).arg("--version").output().expect("ran");
    (output.status.code(), output.stdout)
}

fn subject() -> &'static Subject {
    static SUBJECT: OnceLock<Subject> = OnceLock::new();
    SUBJECT.get_or_init(|| {
        let old = std::fs::read(PROGRAM).expect("a system program");
        let info = ldcache_elf::parse(&old).expect("parsed");
        let entries = info
            .dynamic
            .needed
            .iter()
            .map(|soname| Entry {
                soname: soname.clone(),
                places: vec![Place::File(format!(
                    "/nix/store/0123456789abcdfghijklmnpqrsvwxyz-{soname}/lib/{soname}"
                ))],
            })
            .collect();
        let computed = Computed {
            cache: Cache { entries },
            fingerprint: Fingerprint::of(SearchTag::Runpath, "/nix/store/x/lib"),
        };
        let new = ldcache_inject::rewrite(&old, Some(&computed.section(info.header.endian)))
            .expect("rewritten")
            .expect("changed");
        check(&old, &new).expect("the rewrite passes");
        // ELF64 little endian (x86-64): e_phoff, e_phnum, e_shoff.
        let u64_at = |at: usize| u64::from_le_bytes(new[at..at + 8].try_into().unwrap()) as usize;
        let phnum = u16::from_le_bytes([new[56], new[57]]) as usize;
        let (phoff, shoff) = (u64_at(32), u64_at(40));
        Subject {
            headers: [0..phoff + 56 * phnum, shoff..new.len()],
            expected: run(Path::new(PROGRAM)),
            dir: tempfile::tempdir().expect("a temporary directory"),
            old,
            new,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let s = subject();
    let mut mutant = s.new.clone();
    for pair in data.chunks_exact(4) {
        let position = u32::from_le_bytes([pair[0], pair[1], pair[2] & 0x7f, 0]) as usize;
        let at = if pair[2] & 0x80 == 0 {
            position % mutant.len()
        } else {
            let [head, tail] = &s.headers;
            let span = head.len() + tail.len();
            let i = position % span;
            if i < head.len() {
                head.start + i
            } else {
                tail.start + i - head.len()
            }
        };
        mutant[at] ^= pair[3];
    }
    if mutant == s.new || check(&s.old, &mutant).is_err() {
        return;
    }
    let file = s.dir.path().join("mutant");
    std::fs::write(&file, &mutant).expect("written");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o755))
        .expect("made executable");
    let changed: Vec<usize> = (0..mutant.len())
        .filter(|&i| mutant[i] != s.new[i])
        .collect();
    assert_eq!(
        run(&file),
        s.expected,
        "the oracle accepted a mutant that runs differently; bytes {changed:#x?} changed"
    );
});
