//! `ldcache graft` on a small store: the copy names the grafted store paths everywhere (contents,
//! link targets, its own path), its ELF files carry current notes for their new search paths, it
//! runs as the original does, and input it cannot take leaves nothing behind.

mod oracle;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use oracle::{ldcache, ldcache_json, search_path, Fixture};
use serde_json::Value;

/// Store path names of one length, told apart by their first letter.
fn name(letter: char, rest: &str) -> String {
    format!("{}-{rest}", letter.to_string().repeat(32))
}

struct Store {
    fixture: Fixture,
}

impl Store {
    /// An "old" and a "new" C library, a library and a program needing it, both with search
    /// paths naming the old C library; the program's package also holds a script and a symbolic
    /// link naming the program by its absolute path.
    fn new() -> Store {
        let fixture = Fixture::new();
        for glibc in [name('a', "glibc"), name('b', "glibc")] {
            let lib = fixture.path(&format!("store/{glibc}/lib"));
            std::fs::create_dir_all(&lib).unwrap();
            std::fs::copy("/lib/x86_64-linux-gnu/libc.so.6", lib.join("libc.so.6")).unwrap();
        }
        let store = Store { fixture };
        let glibc = store.dir(&name('a', "glibc"), "lib");
        let base = format!("store/{}/lib", name('c', "base"));
        store.fixture.library(
            &base,
            "base",
            &[],
            &search_path(&[store.dir(&name('c', "base"), "lib"), glibc.clone()], true),
        );
        let app = name('d', "app");
        store.fixture.program(
            &format!("store/{app}/bin/app"),
            &[("base", &base)],
            &search_path(&[store.dir(&name('c', "base"), "lib"), glibc], true),
        );
        let program = store.dir(&app, "bin/app");
        std::fs::remove_file(store.path(&app).join("bin/app.c")).unwrap();
        std::fs::write(
            store.path(&app).join("bin/run"),
            // The C library's hash without its name, as Nix finds references: it goes too.
            format!("#!/bin/sh\n# {}\nexec {program} \"$@\"\n", "a".repeat(32)),
        )
        .unwrap();
        std::fs::set_permissions(
            store.path(&app).join("bin/run"),
            std::fs::Permissions::from_mode(0o555),
        )
        .unwrap();
        std::os::unix::fs::symlink(&program, store.path(&app).join("bin/app-link")).unwrap();
        store
    }

    fn path(&self, name: &str) -> PathBuf {
        self.fixture.path(&format!("store/{name}"))
    }

    fn dir(&self, name: &str, sub: &str) -> String {
        self.path(name).join(sub).display().to_string()
    }

    fn graft(&self, source: &str, out: &str, replace: &[(&str, &str)]) -> std::process::Output {
        let mut command = Command::new(ldcache());
        command
            .arg("graft")
            .arg("--json")
            .arg("--store-dir")
            .arg(self.fixture.path("store"));
        for (old, new) in replace {
            command.arg("--replace").arg(format!(
                "{}={}",
                self.path(old).display(),
                self.path(new).display()
            ));
        }
        command.arg(self.path(source)).arg(self.path(out));
        command.output().unwrap()
    }
}

/// Every file under `dir` (symbolic link targets included) whose bytes hold `needle`.
fn naming(dir: &Path, needle: &str) -> Vec<PathBuf> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .map(|entry| entry.unwrap().into_path())
        .filter(|path| !path.is_dir() || path.is_symlink())
        .filter(|path| {
            let bytes = if path.is_symlink() {
                std::fs::read_link(path)
                    .unwrap()
                    .into_os_string()
                    .into_encoded_bytes()
            } else {
                std::fs::read(path).unwrap()
            };
            bytes.windows(needle.len()).any(|w| w == needle.as_bytes())
        })
        .collect()
}

#[test]
fn a_grafted_closure_names_only_grafted_paths_and_carries_current_notes() {
    let store = Store::new();
    let (old_glibc, new_glibc) = (name('a', "glibc"), name('b', "glibc"));
    let (old_base, new_base) = (name('c', "base"), name('e', "base"));
    let (old_app, new_app) = (name('d', "app"), name('f', "app"));

    let output = store.graft(&old_base, &new_base, &[(&old_glibc, &new_glibc)]);
    assert!(output.status.success(), "{output:?}");
    let output = store.graft(
        &old_app,
        &new_app,
        &[(&old_glibc, &new_glibc), (&old_base, &new_base)],
    );
    assert!(output.status.success(), "{output:?}");
    let summary: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(summary["copied"]["files"], 2, "{summary:#}");
    assert_eq!(summary["copied"]["rewritten"], 2, "{summary:#}");
    assert_eq!(summary["copied"]["symlinks"], 1, "{summary:#}");
    assert_eq!(summary["notes"]["cached"], 1, "{summary:#}");

    // Not even an old path's hash is left (Nix would see a reference in it).
    for old in [&old_glibc, &old_base, &old_app] {
        let hash = &old[..32];
        let left = naming(&store.path(&new_app), hash);
        assert!(left.is_empty(), "{old} still named by {left:?}");
        let left = naming(&store.path(&new_base), hash);
        assert!(left.is_empty(), "{old} still named by {left:?}");
    }
    let program = store.path(&new_app).join("bin/app");
    assert_eq!(
        std::fs::read_link(store.path(&new_app).join("bin/app-link")).unwrap(),
        program
    );
    assert!(
        std::fs::read_to_string(store.path(&new_app).join("bin/run"))
            .unwrap()
            .contains(&program.display().to_string())
    );
    let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o111;
    assert_eq!(mode(&store.path(&new_app).join("bin/run")), 0o111);

    // The notes are current for the new search paths, and name the grafted library.
    for file in [&program, &store.path(&new_base).join("lib/libbase.so")] {
        let shown = ldcache_json(&["show", "--json"], file);
        assert_eq!(shown["current"], true, "{}: {shown:#}", file.display());
    }
    let shown = ldcache_json(&["show", "--json"], &program);
    let entries = shown["entries"].as_array().unwrap();
    let base = entries
        .iter()
        .find(|e| e["soname"] == "libbase.so")
        .unwrap();
    assert!(
        base["paths"][0].as_str().unwrap().contains(&new_base),
        "{shown:#}"
    );

    // The copy runs as the original does, through its script.
    for app in [&old_app, &new_app] {
        let status = Command::new(store.path(app).join("bin/run"))
            .status()
            .unwrap();
        assert!(status.success(), "{app}");
    }
}

#[test]
fn input_it_cannot_take_leaves_nothing_behind() {
    let store = Store::new();
    let old_app = name('d', "app");

    // A replacement of another length.
    let output = store.graft(
        &old_app,
        &name('f', "app"),
        &[(&name('a', "glibc"), "x-glibc")],
    );
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("differ in length"));
    assert!(!store.path(&name('f', "app")).exists());

    // An output name of another length.
    let output = store.graft(&old_app, "short-app", &[]);
    assert!(!output.status.success());
    assert!(!store.path("short-app").exists());

    // An output that exists.
    let taken = store.path(&name('g', "app"));
    std::fs::create_dir(&taken).unwrap();
    let output = store.graft(&old_app, &name('g', "app"), &[]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("exists"));
    assert_eq!(std::fs::read_dir(&taken).unwrap().count(), 0);
}
