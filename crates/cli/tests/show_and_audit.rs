//! `ldcache show`, `explain` with notes, and `audit`, on programs carrying resolution-cache notes
//! (written here in assembly, since embedding is not this test's subject).

mod oracle;

use std::path::PathBuf;
use std::process::Command;

use ldcache_elf::{Class, Dynamic, ElfInfo, Endian, Header, Linkage, NT_NIXOS_LDCACHE};
use ldcache_note::{compute, Rules, NT_NIXOS_LDCACHE_FINGERPRINT};
use oracle::{ldcache_json as ldcache, nixos_notes_source, search_path, Fixture};
use serde_json::Value;

/// A store of 10 packages (libraries in 6) and the search path a program gets: every package's lib
/// directory plus one directory outside the store.
struct Layout {
    fixture: Fixture,
    libs: Vec<(String, String)>,
    runpath: String,
}

impl Layout {
    fn new() -> Layout {
        let fixture = Fixture::new();
        let mut libs = Vec::new();
        let mut dirs = Vec::new();
        for i in 0..10 {
            let dir = format!("store/{i}zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz-p{i}/lib");
            std::fs::create_dir_all(fixture.path(&dir)).unwrap();
            if i % 2 == 0 || i == 9 {
                fixture.library(&dir, &format!("p{i}"), &[], &[]);
                libs.push((format!("p{i}"), dir.clone()));
            }
            dirs.push(fixture.path(&dir).display().to_string());
        }
        dirs.insert(3, fixture.path("outside/lib").display().to_string());
        // As in Nix, the C library comes from a store package on the search path too.
        let glibc = fixture.path("store/gzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz-glibc/lib");
        std::fs::create_dir_all(&glibc).unwrap();
        std::fs::copy("/lib/x86_64-linux-gnu/libc.so.6", glibc.join("libc.so.6")).unwrap();
        dirs.push(glibc.display().to_string());
        Layout {
            fixture,
            libs,
            runpath: dirs.join(":"),
        }
    }

    fn store_dir(&self) -> String {
        self.fixture.path("store").display().to_string()
    }

    /// The notes `compute` gives for a program of this layout whose search path is `computed_for`.
    fn notes(&self, computed_for: &str) -> String {
        let mut needed: Vec<String> = self
            .libs
            .iter()
            .map(|(n, _)| format!("lib{n}.so"))
            .collect();
        needed.push("libc.so.6".into());
        let info = ElfInfo {
            header: Header {
                class: Class::Elf64,
                endian: Endian::Little,
                e_type: 2,
                machine: 62,
                osabi: 0,
            },
            linkage: Linkage::Dynamic,
            interpreter: None,
            dynamic: Dynamic {
                needed,
                runpath: Some(computed_for.to_string()),
                ..Dynamic::default()
            },
            notes: Vec::new(),
        };
        let computed = compute(&info, &Rules::new(&self.store_dir())).unwrap();
        nixos_notes_source(&[
            (NT_NIXOS_LDCACHE, &computed.cache.encode()),
            (
                NT_NIXOS_LDCACHE_FINGERPRINT,
                &computed.fingerprint.encode(Endian::Little),
            ),
        ])
    }

    fn program(&self, name: &str, notes: &str) -> PathBuf {
        let needs: Vec<(&str, &str)> = self
            .libs
            .iter()
            .map(|(n, d)| (n.as_str(), d.as_str()))
            .collect();
        let dirs: Vec<String> = self.runpath.split(':').map(str::to_string).collect();
        self.fixture
            .program_with(name, &needs, &search_path(&dirs, true), notes)
    }
}

#[test]
fn show_a_current_note() {
    let layout = Layout::new();
    let program = layout.program("noted", &layout.notes(&layout.runpath));
    let shown = ldcache(&["show", "--json"], &program);
    assert_eq!(shown["note"], true);
    assert_eq!(shown["current"], true, "{shown:#}");
    assert_eq!(shown["fingerprint"]["tag"], "runpath");
    let entries = shown["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 7, "six libraries and libc: {shown:#}");
    // libp0 sits before the directory outside the store, libp4 after it.
    let paths =
        |soname: &str| entries.iter().find(|e| e["soname"] == soname).unwrap()["paths"].clone();
    assert_eq!(paths("libp0.so").as_array().unwrap().len(), 1);
    assert!(paths("libp0.so")[0]
        .as_str()
        .unwrap()
        .ends_with("-p0/lib/libp0.so"));
    let outside = format!("?{}", layout.fixture.path("outside/lib").display());
    assert_eq!(paths("libp4.so")[0], outside);
    assert!(paths("libp4.so")[1]
        .as_str()
        .unwrap()
        .ends_with("-p4/lib/libp4.so"));
    assert_eq!(paths("libc.so.6")[0], outside);
    assert!(paths("libc.so.6")[1]
        .as_str()
        .unwrap()
        .ends_with("-glibc/lib/libc.so.6"));
}

#[test]
fn a_note_computed_for_another_search_path_is_stale_and_ignored() {
    let layout = Layout::new();
    let edited = layout.runpath.replace("-p9/lib", "-p9/lib64");
    let program = layout.program("stale", &layout.notes(&edited));
    let shown = ldcache(&["show", "--json"], &program);
    assert_eq!(shown["current"], false);
    assert!(
        shown["reason"].as_str().unwrap().starts_with("stale"),
        "{shown:#}"
    );
    let explained = ldcache(&["explain", "--json", "--library-path", ""], &program);
    let main = &explained["objects"][0];
    assert!(main["note"].as_str().unwrap().starts_with("ignored: stale"));
    assert!(main["needed"]
        .as_array()
        .unwrap()
        .iter()
        .all(|n| n["via"] != "note"));
}

#[test]
fn explain_predicts_the_patched_loader_with_notes() {
    let layout = Layout::new();
    let program = layout.program("fast", &layout.notes(&layout.runpath));
    let json = |cache: &str| {
        ldcache(
            &["explain", "--json", "--library-path", "", "--cache", cache],
            &program,
        )
    };
    let stock = json("off");
    let noted = json("notes");
    let needed = noted["objects"][0]["needed"].as_array().unwrap();
    let from_notes: Vec<&Value> = needed.iter().collect();
    assert!(from_notes.iter().all(|l| l["via"] == "note"), "{needed:#?}");
    // What remains is the missing directory outside the store, tried (and stat'ed) once per
    // capability subdirectory by the first search that gets there, then known to be missing.
    let subdirs = noted["loader"]["subdirs"].as_array().unwrap().len() as u64;
    let remaining: u64 = from_notes
        .iter()
        .map(|l| l["failed_lookups"].as_u64().unwrap())
        .sum();
    assert_eq!(remaining, 2 * subdirs, "{needed:#?}");
    // Same files either way, far fewer failing lookups with the notes.
    let resolved = |report: &Value| -> Vec<Value> {
        report["objects"][0]["needed"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["resolved"].clone())
            .collect()
    };
    assert_eq!(resolved(&stock), resolved(&noted));
    let (stock_failed, noted_failed) = (
        stock["failed_lookups"].as_u64().unwrap(),
        noted["failed_lookups"].as_u64().unwrap(),
    );
    assert!(
        noted_failed * 2 < stock_failed,
        "{noted_failed} vs {stock_failed}"
    );
    // The notes ldcache would write give the same as the notes present (they are the same notes).
    let store = format!("--store-dir={}", layout.store_dir());
    let computed = ldcache(
        &[
            "explain",
            "--json",
            "--library-path",
            "",
            "--cache",
            "computed",
            &store,
        ],
        &program,
    );
    assert_eq!(computed["failed_lookups"], noted["failed_lookups"]);
}

#[test]
fn show_without_a_note_says_so() {
    let layout = Layout::new();
    let program = layout.program("plain", "");
    let shown = ldcache(&["show", "--json"], &program);
    assert_eq!(
        (shown["note"].clone(), shown["current"].clone()),
        (Value::Bool(false), Value::Bool(false))
    );
    let output = Command::new(oracle::ldcache())
        .arg("show")
        .arg(&program)
        .output()
        .unwrap();
    assert!(output.status.success());
    assert!(String::from_utf8_lossy(&output.stdout).contains("no resolution-cache note"));
}

#[test]
fn audit_agrees_with_explain_and_ranks_the_worst_first() {
    let layout = Layout::new();
    let plain = layout.program("plain", "");
    let noted = layout.program("noted", &layout.notes(&layout.runpath));
    let store = format!("--store-dir={}", layout.store_dir());
    let audit = ldcache(&["audit", "--json", &store], layout.fixture.root.path());
    let files = audit["files"].as_array().unwrap();
    assert_eq!(
        files.len(),
        3 + layout.libs.len(),
        "two programs, the libraries, libc: {audit:#}"
    );
    let stock: Vec<u64> = files.iter().map(|f| f["stock"].as_u64().unwrap()).collect();
    assert!(
        stock.windows(2).all(|w| w[0] >= w[1]),
        "worst first: {stock:?}"
    );
    for (program, notes_present) in [(&plain, false), (&noted, true)] {
        let entry = files
            .iter()
            .find(|f| f["path"] == program.display().to_string())
            .unwrap();
        let failed = |cache: &str| {
            let args = [
                "explain",
                "--json",
                "--library-path",
                "",
                "--cache",
                cache,
                &store,
            ];
            ldcache(&args, program)["failed_lookups"].as_u64().unwrap()
        };
        assert_eq!(entry["stock"], failed("off"));
        assert_eq!(entry["with_notes"], failed("notes"));
        assert_eq!(entry["with_ldcache"], failed("computed"));
        assert_eq!(entry["with_notes"] == entry["stock"], !notes_present);
        assert!(entry["with_ldcache"].as_u64() < entry["stock"].as_u64());
    }
    let total = &audit["total"];
    let sum: u64 = stock.iter().sum();
    assert_eq!(total["stock"], sum);
}

#[test]
fn audit_output_is_the_same_whatever_the_thread_count() {
    let layout = Layout::new();
    layout.program("plain", "");
    layout.program("noted", &layout.notes(&layout.runpath));
    let store = format!("--store-dir={}", layout.store_dir());
    let run = |jobs: &str| {
        let output = Command::new(oracle::ldcache())
            .args(["audit", "--json", "--jobs", jobs, &store])
            .arg(layout.fixture.root.path())
            .output()
            .unwrap();
        assert!(output.status.success());
        output.stdout
    };
    assert_eq!(run("1"), run("4"));
}
