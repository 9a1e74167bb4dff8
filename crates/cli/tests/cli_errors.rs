//! Bad input to the command line: a clear one-line error, a non-zero exit, never a panic.

use std::path::Path;
use std::process::Command;

fn explain(file: &Path) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_ldcache"))
        .args(["explain", "--library-path", ""])
        .arg(file)
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn assert_clean_failure(file: &Path, expected: &str) {
    let (ok, stderr) = explain(file);
    assert!(!ok, "{} was accepted", file.display());
    assert!(
        !stderr.contains("panicked"),
        "panic on {}: {stderr}",
        file.display()
    );
    assert!(stderr.starts_with("ldcache: "), "{stderr}");
    assert!(
        stderr.contains(expected),
        "expected {expected:?} in {stderr:?}"
    );
}

#[test]
fn empty_missing_and_non_elf_files() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty");
    std::fs::write(&empty, b"").unwrap();
    assert_clean_failure(&empty, "not an ELF file");
    let script = dir.path().join("script");
    std::fs::write(&script, b"#!/bin/sh\n").unwrap();
    assert_clean_failure(&script, "not an ELF file");
    assert_clean_failure(&dir.path().join("missing"), "No such file or directory");
    assert_clean_failure(Path::new("/"), "not a regular file (a directory)");
}

#[test]
fn a_fifo_is_refused_at_once_by_every_command() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    let status = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(status.success());
    // Nothing writes to the FIFO: a command that opened it blocking, or read it, would hang.
    let run = |args: &[&str]| {
        let output = Command::new("timeout")
            .args(["10", env!("CARGO_BIN_EXE_ldcache")])
            .args(args)
            .output()
            .unwrap();
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    let path = fifo.to_str().unwrap();
    for args in [
        vec!["show", path],
        vec!["explain", path],
        vec!["verify", path, path],
        vec!["embed", path],
        vec!["strip", path],
        vec!["audit", path],
    ] {
        let (code, stderr) = run(&args);
        assert_eq!(code, Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains("not a regular file"), "{args:?}: {stderr}");
    }
}

#[test]
fn statically_linked_program() {
    let dir = tempfile::tempdir().unwrap();
    let source = dir.path().join("s.c");
    std::fs::write(&source, "int main(void) { return 0; }\n").unwrap();
    let program = dir.path().join("s");
    let status = Command::new("gcc")
        .arg("-static")
        .arg("-o")
        .arg(&program)
        .arg(&source)
        .status()
        .unwrap();
    assert!(status.success());
    assert_clean_failure(&program, "not dynamically linked");
}

#[test]
fn truncated_and_corrupted_programs() {
    let dir = tempfile::tempdir().unwrap();
    let data = std::fs::read("/bin/true").unwrap();
    let cut = dir.path().join("cut");
    // Every length through the headers, then a spread through the rest (the reader itself is
    // tested on every length in-process).
    let lengths = (0..200).chain((200..data.len()).step_by(997));
    for len in lengths {
        std::fs::write(&cut, &data[..len]).unwrap();
        let (ok, stderr) = explain(&cut);
        assert!(
            !stderr.contains("panicked"),
            "panic at length {len}: {stderr}"
        );
        assert!(
            ok || stderr.starts_with("ldcache: "),
            "length {len}: {stderr}"
        );
    }
    // Program headers pointing past the end of the file.
    let mut bad = data.clone();
    bad[32..40].copy_from_slice(&u64::MAX.to_le_bytes());
    std::fs::write(&cut, &bad).unwrap();
    assert_clean_failure(&cut, "program header");
}

#[test]
fn store_dir_must_be_absolute_and_normal() {
    let dir = tempfile::tempdir().unwrap();
    for bad in [
        "store",
        "./store",
        "nix/store",
        "/nix/./store",
        "/nix/../store",
        "/nix//store",
    ] {
        for command in ["embed", "audit"] {
            let output = Command::new(env!("CARGO_BIN_EXE_ldcache"))
                .args([command, "--store-dir", bad])
                .arg(dir.path())
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert!(
                !output.status.success(),
                "{command} --store-dir {bad} was accepted"
            );
            assert!(
                stderr.contains("must be an absolute path"),
                "{command} --store-dir {bad}: {stderr}"
            );
        }
    }
    for good in ["/nix/store", "/nix/store/", "/"] {
        let status = Command::new(env!("CARGO_BIN_EXE_ldcache"))
            .args(["embed", "--store-dir", good])
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(status.success(), "--store-dir {good} was refused");
    }
}
