//! `ldcache generate`: manual pages for the tool and each of its commands, and completions that
//! know every command.

use std::process::Command;

const COMMANDS: [&str; 8] = [
    "embed", "strip", "explain", "show", "audit", "verify", "graft", "generate",
];

fn ldcache(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ldcache"))
        .args(args)
        .output()
        .expect("ran")
}

#[test]
fn manual_pages_for_the_tool_and_every_command() {
    let dir = tempfile::tempdir().unwrap();
    let out = ldcache(&["generate", "man", dir.path().to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    let mut pages: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    pages.sort();
    let mut expected: Vec<String> = COMMANDS.iter().map(|c| format!("ldcache-{c}.1")).collect();
    expected.push("ldcache.1".into());
    expected.sort();
    assert_eq!(pages, expected);
    let embed = std::fs::read_to_string(dir.path().join("ldcache-embed.1")).unwrap();
    assert!(
        embed.starts_with(".ie") && embed.contains("\\-\\-store\\-dir"),
        "{embed}"
    );
    // A manual page needs its directory.
    assert!(!ldcache(&["generate", "man"]).status.success());
}

#[test]
fn completions_know_every_command() {
    for shell in ["bash", "zsh", "fish"] {
        let out = ldcache(&["generate", shell]);
        assert!(out.status.success(), "{shell}: {out:?}");
        let text = String::from_utf8(out.stdout).unwrap();
        for command in COMMANDS {
            assert!(text.contains(command), "{shell} completion lacks {command}");
        }
    }
}
