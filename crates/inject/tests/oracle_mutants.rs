//! The oracle's own net: random damage to a correct rewrite of a real program. Every mutant the
//! oracle accepts must still run as the original does (`--version`: the same output and status);
//! the mutants it rejects need no run. Deterministic (a fixed seed), so a failure reproduces.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use common::{program_headers, section_headers};
use ldcache_inject::check::check;

const PROGRAM: &str = "/usr/bin/true";
const MUTANTS: usize = 100_000;

/// xorshift64*: enough randomness for choosing bytes, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn run(path: &std::path::Path) -> (Option<i32>, Vec<u8>) {
    let output = Command::new(path).arg("--version").output().expect("ran");
    (output.status.code(), output.stdout)
}

#[test]
fn every_accepted_mutant_runs_as_the_original() {
    let (old, new) = common::rewritten(PROGRAM);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("mutant");
    let expected = run(std::path::Path::new(PROGRAM));
    // Where mutations land: anywhere, or within the headers (ELF header and the program and
    // section header tables), where the oracle allows most changes.
    let (phoff, phnum) = program_headers(&new);
    let header_end = phoff + 56 * phnum;
    let (shoff, _) = section_headers(&new);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let (mut accepted, mut wrong) = (0, Vec::new());
    for n in 0..MUTANTS {
        let mut mutant = new.clone();
        for _ in 0..1 + rng.below(3) {
            let at = match rng.below(3) {
                0 => rng.below(mutant.len()),
                1 => rng.below(header_end),
                _ => shoff + rng.below(mutant.len() - shoff),
            };
            mutant[at] ^= 1 << rng.below(8);
        }
        if mutant == new || check(&old, &mutant).is_err() {
            continue;
        }
        accepted += 1;
        std::fs::write(&file, &mutant).unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o755)).unwrap();
        if run(&file) != expected {
            let changed: Vec<usize> = (0..new.len()).filter(|&i| mutant[i] != new[i]).collect();
            eprintln!("mutant {n}: bytes {changed:#x?} flipped");
            wrong.push(n);
        }
    }
    eprintln!(
        "{MUTANTS} mutants, {accepted} accepted, {} of them ran differently",
        wrong.len()
    );
    assert!(
        wrong.is_empty(),
        "accepted mutants that run differently: {wrong:?}"
    );
    assert!(accepted > 0, "no mutant accepted: the test shows nothing");
}
