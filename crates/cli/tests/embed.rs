//! `ldcache embed` and `ldcache strip` on a small store: what is written, skipped and refused, that
//! programs still run, that a second run changes nothing, and how files are written.

mod oracle;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;

use oracle::{search_path, Fixture};
use serde_json::Value;

/// A store with three libraries (one needing another) and a program needing two of them, every
/// search path listing all store directories plus one outside the store.
fn store() -> (Fixture, std::path::PathBuf) {
    let fixture = Fixture::new();
    let dirs: Vec<String> = ["a-base", "b-mid", "c-top", "d-empty"]
        .iter()
        .map(|p| {
            fixture
                .path(&format!("store/{p}/lib"))
                .display()
                .to_string()
        })
        .chain([fixture.path("outside/lib").display().to_string()])
        .collect();
    std::fs::create_dir_all(fixture.path("store/d-empty/lib")).unwrap();
    let link = search_path(&dirs, true);
    fixture.library("store/a-base/lib", "base", &[], &link);
    fixture.library(
        "store/b-mid/lib",
        "mid",
        &[("base", "store/a-base/lib")],
        &link,
    );
    fixture.library("store/c-top/lib", "top", &[], &link);
    let program = fixture.program_with(
        "store/e-app/bin/app",
        &[("mid", "store/b-mid/lib"), ("top", "store/c-top/lib")],
        &link,
        "",
    );
    (fixture, program)
}

fn ldcache(args: &[&str], paths: &[&Path]) -> (bool, Value, String) {
    let output = Command::new(oracle::ldcache())
        .args(args)
        .args(paths)
        .output()
        .unwrap();
    let json = serde_json::from_slice(&output.stdout).unwrap_or(Value::Null);
    (
        output.status.success(),
        json,
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn store_arg(fixture: &Fixture) -> String {
    format!("--store-dir={}", fixture.path("store").display())
}

fn snapshot(root: &Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut files: Vec<_> = walk(root)
        .into_iter()
        .map(|p| (p.clone(), std::fs::read(&p).unwrap()))
        .collect();
    files.sort();
    files
}

fn walk(root: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(root).unwrap().flatten() {
        let path = entry.path();
        if path.is_symlink() {
            continue;
        }
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[test]
fn embeds_every_dynamic_object_and_the_program_still_runs() {
    let (fixture, program) = store();
    let store_dir = fixture.path("store");
    let before = Command::new(&program).output().unwrap();
    // Things to skip: a text file, an object file, a static program, a debug file.
    std::fs::write(fixture.path("store/a-base/lib/README"), "text").unwrap();
    let source = fixture.path("s.c");
    std::fs::write(&source, "int main(void) { return 0; }\n").unwrap();
    let compile = |args: &[&str], out: &str| {
        assert!(Command::new("gcc")
            .args(args)
            .arg("-o")
            .arg(fixture.path(out))
            .arg(&source)
            .status()
            .unwrap()
            .success())
    };
    compile(&["-c"], "store/a-base/lib/s.o");
    compile(&["-static"], "store/a-base/lib/static");
    let debug = fixture.path("store/a-base/lib/libbase.so.debug");
    let status = Command::new("objcopy")
        .arg("--only-keep-debug")
        .arg(fixture.path("store/a-base/lib/libbase.so"))
        .arg(&debug)
        .status()
        .unwrap();
    assert!(status.success());

    let (ok, summary, _) = ldcache(&["embed", "--json", &store_arg(&fixture)], &[&store_dir]);
    assert!(ok);
    // The program and the three libraries: even libc, found outside the store, gets a list that
    // prunes the store directories.
    assert_eq!(summary["cached"], 4, "{summary:#}");
    let reasons = &summary["skipped_reasons"];
    assert_eq!(
        reasons["not ELF"], 2,
        "the text file and the program's C source: {summary:#}"
    );
    assert_eq!(reasons["relocatable"], 1);
    assert_eq!(reasons["static"], 1);
    assert_eq!(reasons["separate debug file"], 1);
    assert_eq!(summary["refused"].as_array().unwrap().len(), 0);

    let after = Command::new(&program).output().unwrap();
    assert_eq!((before.status, before.stdout), (after.status, after.stdout));
    let (_, shown, _) = ldcache(&["show", "--json"], &[&program]);
    assert_eq!(shown["current"], true, "{shown:#}");
    let mid = shown["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["soname"] == "libmid.so")
        .unwrap()
        .clone();
    assert_eq!(
        mid["paths"][0].as_str().unwrap(),
        format!(
            "={}/store/b-mid/lib/libmid.so",
            fixture.root.path().display()
        )
    );

    // A second run writes nothing.
    let snapshot_before = snapshot(&store_dir);
    let (ok, summary, _) = ldcache(&["embed", "--json", &store_arg(&fixture)], &[&store_dir]);
    assert!(ok);
    assert_eq!(
        (summary["cached"].clone(), summary["unchanged"].clone()),
        (0.into(), 4.into())
    );
    assert_eq!(snapshot(&store_dir), snapshot_before);

    // Strip takes the notes out again, and the program still runs.
    let (ok, summary, _) = ldcache(&["strip", "--json"], &[&store_dir]);
    assert!(ok);
    assert_eq!(summary["removed"], 4);
    let (_, shown, _) = ldcache(&["show", "--json"], &[&program]);
    assert_eq!(shown["note"], false);
    assert_eq!(
        Command::new(&program).output().unwrap().status,
        before.status
    );
}

#[test]
fn hard_links_and_read_only_files() {
    let (fixture, program) = store();
    let lib = fixture.path("store/b-mid/lib/libmid.so");
    let link = fixture.path("store/b-mid/lib/libmid-link.so");
    std::fs::hard_link(&lib, &link).unwrap();
    std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o555)).unwrap();
    let (ok, summary, _) = ldcache(
        &["embed", "--json", &store_arg(&fixture)],
        &[&fixture.path("store")],
    );
    assert!(ok);
    assert_eq!(summary["cached"], 4, "each inode once: {summary:#}");
    let (a, b) = (
        std::fs::metadata(&lib).unwrap(),
        std::fs::metadata(&link).unwrap(),
    );
    assert_eq!((a.ino(), a.nlink()), (b.ino(), 2), "the hard link is kept");
    assert_eq!(
        std::fs::metadata(&program).unwrap().permissions().mode() & 0o777,
        0o555
    );
    let (_, shown, _) = ldcache(&["show", "--json"], &[&program]);
    assert_eq!(shown["current"], true);
}

#[test]
fn refusals_are_reported_and_leave_the_file_alone() {
    let (fixture, _) = store();
    // An ELF header whose program headers point past the end of the file.
    let mut broken = std::fs::read(fixture.path("store/c-top/lib/libtop.so")).unwrap();
    broken.truncate(200);
    let path = fixture.path("store/c-top/lib/libbroken.so");
    std::fs::write(&path, &broken).unwrap();
    let (ok, summary, stderr) = ldcache(
        &["embed", "--json", &store_arg(&fixture)],
        &[&fixture.path("store")],
    );
    assert!(ok, "refusals do not fail the run: {stderr}");
    let refused = summary["refused"].as_array().unwrap();
    assert_eq!(refused.len(), 1, "{summary:#}");
    assert_eq!(refused[0]["path"], path.display().to_string());
    assert!(
        refused[0]["reason"]
            .as_str()
            .unwrap()
            .contains("unreadable ELF"),
        "{refused:?}"
    );
    // Counted by kind.
    assert_eq!(refused[0]["kind"], "unreadable");
    assert_eq!(
        summary["refused_kinds"],
        serde_json::json!({ "unreadable": 1 })
    );
    assert_eq!(std::fs::read(&path).unwrap(), broken);
    let (ok, _, stderr) = ldcache(
        &["embed", "--strict", &store_arg(&fixture)],
        &[&fixture.path("store")],
    );
    assert!(!ok, "--strict fails on refusals");
    assert!(stderr.contains("refused"), "{stderr}");
    let (ok, _, stderr) = ldcache(&["embed"], &[&fixture.path("missing")]);
    assert!(!ok && stderr.contains("missing"), "{stderr}");
}

#[test]
fn same_bytes_whatever_the_thread_count() {
    let (a, _) = store();
    let copy = |from: &Fixture, to: &Path| {
        let status = Command::new("cp")
            .arg("-a")
            .arg(from.path("store"))
            .arg(to)
            .status()
            .unwrap();
        assert!(status.success());
    };
    let (one, many) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    copy(&a, one.path());
    copy(&a, many.path());
    let run = |root: &Path, jobs: &str| {
        let store_dir = root.join("store");
        let arg = format!("--store-dir={}", store_dir.display());
        let (ok, _, _) = ldcache(&["embed", "--jobs", jobs, &arg], &[&store_dir]);
        assert!(ok);
    };
    run(one.path(), "1");
    run(many.path(), "4");
    let relative = |root: &Path| -> Vec<(std::path::PathBuf, Vec<u8>)> {
        snapshot(&root.join("store"))
            .into_iter()
            .map(|(p, d)| (p.strip_prefix(root).unwrap().to_path_buf(), d))
            .collect()
    };
    // Paths inside the notes name each copy's own store, so compare the structure of one with the
    // other after swapping the roots.
    let one_files = relative(one.path());
    let many_files = relative(many.path());
    assert_eq!(one_files.len(), many_files.len());
    let swap = |data: &[u8]| {
        let from = one.path().display().to_string();
        let to = many.path().display().to_string();
        assert_eq!(from.len(), to.len());
        let mut out = data.to_vec();
        let mut i = 0;
        while let Some(at) = out[i..]
            .windows(from.len())
            .position(|w| w == from.as_bytes())
        {
            out[i + at..i + at + from.len()].copy_from_slice(to.as_bytes());
            i += at + from.len();
        }
        out
    };
    for ((path_a, data_a), (path_b, data_b)) in one_files.iter().zip(&many_files) {
        assert_eq!(path_a, path_b);
        assert!(
            swap(data_a) == *data_b,
            "{} differs between --jobs 1 and 4",
            path_a.display()
        );
    }
}

#[test]
fn a_stale_note_is_replaced_in_one_run() {
    let (fixture, program) = store();
    let store = store_arg(&fixture);
    let (ok, _, stderr) = ldcache(&["embed", &store], &[&fixture.path("store")]);
    assert!(ok, "{stderr}");
    // The note's entry for libmid.so, as text; the note must be current.
    let mid_entry = || {
        let (_, shown, _) = ldcache(&["show", "--json"], &[&program]);
        let entry = shown["entries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["soname"] == "libmid.so")
            .cloned()
            .unwrap_or_else(|| panic!("{shown:#}"));
        assert_eq!(shown["current"], true, "{shown:#}");
        entry.to_string()
    };
    assert!(mid_entry().contains("b-mid"));
    // libmid.so now also in a directory searched before its own: the answer changes.
    std::fs::copy(
        fixture.path("store/b-mid/lib/libmid.so"),
        fixture.path("store/a-base/lib/libmid.so"),
    )
    .unwrap();
    let (ok, summary, stderr) = ldcache(&["embed", "--json", &store], &[&program]);
    assert!(ok, "{stderr}");
    assert_eq!(
        (
            summary["cached"].as_u64(),
            summary["refused"].as_array().map(Vec::len)
        ),
        (Some(1), Some(0)),
        "{summary:#}"
    );
    let entry = mid_entry();
    assert!(
        entry.contains("a-base") && !entry.contains("b-mid"),
        "{entry}"
    );
    assert!(Command::new(&program).status().unwrap().success());
    // And removal stays possible.
    let (ok, summary, _) = ldcache(&["strip", "--json"], &[&program]);
    assert!(ok && summary["removed"] == 1, "{summary:#}");
}
