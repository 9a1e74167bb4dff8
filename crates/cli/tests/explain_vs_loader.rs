//! `ldcache explain` against the real loader: for every fixture the libraries each search resolves to
//! equal `LD_DEBUG=libs`, and the failing `open`/`stat` calls predicted per search equal those strace
//! sees in the same run. Exactly.

mod oracle;

use oracle::{assert_agree, search_path, Fixture, Run::Execute};

/// `n` store-like directories `store/<hash>-pkgN/lib` (only some of which will hold libraries).
fn store_dirs(fixture: &Fixture, n: usize) -> Vec<String> {
    (0..n)
        .map(|i| {
            fixture
                .path(&format!(
                    "store/{i:04}abcdefghijklmnopqrstuvwxyz-pkg{i}/lib"
                ))
                .display()
                .to_string()
        })
        .collect()
}

fn relative(fixture: &Fixture, dir: &str) -> String {
    dir.strip_prefix(&format!("{}/", fixture.root.path().display()))
        .unwrap()
        .to_string()
}

#[test]
fn deep_runpath_with_nested_dependencies() {
    let fixture = Fixture::new();
    let dirs = store_dirs(&fixture, 34);
    // 12 libraries in every third directory; every directory is created, but some stay empty and a
    // few at the end never exist.
    for dir in &dirs[..30] {
        std::fs::create_dir_all(dir).unwrap();
    }
    let mut libs: Vec<(String, String)> = Vec::new();
    for i in 0..12 {
        let dir = relative(&fixture, &dirs[i * 2 + 5]);
        let name = format!("l{i}");
        // Each library after the third needs the one two before it, found through its own RUNPATH.
        let needs: Vec<(&str, &str)> = if i >= 3 {
            vec![(libs[i - 2].0.as_str(), libs[i - 2].1.as_str())]
        } else {
            vec![]
        };
        fixture.library(&dir, &name, &needs, &search_path(&dirs, true));
        libs.push((name, dir));
    }
    let needs: Vec<(&str, &str)> = libs.iter().map(|(n, d)| (n.as_str(), d.as_str())).collect();
    let program = fixture.program("deep", &needs, &search_path(&dirs, true));

    let (observed, predicted) = assert_agree(&program, Execute, fixture.root.path(), &[]);
    assert!(
        observed.failed_total > 300,
        "a real storm: {}",
        observed.failed_total
    );
    assert_eq!(predicted.failed_total, observed.failed_total);
}

#[test]
fn origin_entries() {
    let fixture = Fixture::new();
    fixture.library("pkg/lib", "inner", &[], &[]);
    fixture.library(
        "pkg/lib",
        "outer",
        &[("inner", "pkg/lib")],
        &search_path(&["$ORIGIN/missing".into(), "${ORIGIN}".into()], true),
    );
    let program = fixture.program(
        "bin/app",
        &[("outer", "pkg/lib")],
        &search_path(
            &["$ORIGIN/../nothing".into(), "$ORIGIN/../pkg/lib".into()],
            true,
        ),
    );
    let (_, predicted) = assert_agree(&program, Execute, fixture.root.path(), &[]);
    assert!(predicted.searches[0]
        .resolved
        .as_ref()
        .unwrap()
        .contains("/bin/../pkg/lib/"));
}

#[test]
fn glibc_hwcaps_subdirectory_wins() {
    let fixture = Fixture::new();
    fixture.library("hw/lib", "fast", &[], &[]);
    let v2 = fixture.library("hw/lib/glibc-hwcaps/x86-64-v2", "fast", &[], &[]);
    let dirs = vec![
        fixture.path("none").display().to_string(),
        fixture.path("hw/lib").display().to_string(),
    ];
    let program = fixture.program("hw-app", &[("fast", "hw/lib")], &search_path(&dirs, true));
    let (observed, _) = assert_agree(&program, Execute, fixture.root.path(), &[]);
    // On a CPU without x86-64-v2 the plain copy is right; on any other, the subdirectory.
    let resolved = observed.searches[0].resolved.clone().unwrap();
    assert!(resolved == v2.display().to_string() || resolved.ends_with("hw/lib/libfast.so"));
}

#[test]
fn rpath_versus_runpath() {
    let fixture = Fixture::new();
    fixture.library("a", "dep", &[], &[]);
    fixture.library("b", "dep", &[], &[]);
    let dirs = |names: &[&str]| -> Vec<String> {
        names
            .iter()
            .map(|n| fixture.path(n).display().to_string())
            .collect()
    };
    // DT_RPATH beats LD_LIBRARY_PATH; DT_RUNPATH loses to it.
    let old = fixture.program(
        "old-tags",
        &[("dep", "a")],
        &search_path(&dirs(&["missing", "a"]), false),
    );
    let new = fixture.program(
        "new-tags",
        &[("dep", "a")],
        &search_path(&dirs(&["missing", "a"]), true),
    );
    let b = fixture.path("b").display().to_string();
    let (rpath_run, _) = assert_agree(
        &old,
        Execute,
        fixture.root.path(),
        &[("LD_LIBRARY_PATH", &b)],
    );
    assert!(rpath_run.searches[0]
        .resolved
        .as_ref()
        .unwrap()
        .ends_with("/a/libdep.so"));
    let (runpath_run, _) = assert_agree(
        &new,
        Execute,
        fixture.root.path(),
        &[("LD_LIBRARY_PATH", &b)],
    );
    assert!(runpath_run.searches[0]
        .resolved
        .as_ref()
        .unwrap()
        .ends_with("/b/libdep.so"));
}

#[test]
fn rpath_inherited_from_the_executable() {
    let fixture = Fixture::new();
    fixture.library("deep", "leaf", &[], &[]);
    // `mid` has no search path of its own: its need is found through the program's DT_RPATH.
    fixture.library("mid", "mid", &[("leaf", "deep")], &[]);
    // `blocked` has a DT_RUNPATH, which switches the inherited DT_RPATH off: its need is not found.
    fixture.library(
        "blocked",
        "blocked",
        &[("leaf", "deep")],
        &search_path(&["/nonexistent".into()], true),
    );
    let dirs: Vec<String> = ["mid", "deep"]
        .iter()
        .map(|d| fixture.path(d).display().to_string())
        .collect();
    let inherits = fixture.program("inherits", &[("mid", "mid")], &search_path(&dirs, false));
    let (run, _) = assert_agree(&inherits, Execute, fixture.root.path(), &[]);
    let leaf = run
        .searches
        .iter()
        .find(|s| s.soname == "libleaf.so")
        .unwrap();
    assert!(leaf
        .resolved
        .as_ref()
        .unwrap()
        .ends_with("/deep/libleaf.so"));

    let dirs: Vec<String> = ["blocked"]
        .iter()
        .map(|d| fixture.path(d).display().to_string())
        .collect();
    let mut link = search_path(&dirs, false);
    link.push(format!(
        "-Wl,-rpath-link,{}",
        fixture.path("deep").display()
    ));
    let blocked = fixture.program("blocked-app", &[("blocked", "blocked")], &link);
    let (run, _) = assert_agree(&blocked, Execute, fixture.root.path(), &[]);
    assert_eq!(run.searches.last().unwrap().soname, "libleaf.so");
    assert_eq!(run.searches.last().unwrap().resolved, None);
}

#[test]
fn ld_library_path_overrides_runpath() {
    let fixture = Fixture::new();
    fixture.library("store/x/lib", "thing", &[], &[]);
    let override_copy = fixture.library("override", "thing", &[], &[]);
    let dirs = vec![fixture.path("store/x/lib").display().to_string()];
    let program = fixture.program(
        "llp",
        &[("thing", "store/x/lib")],
        &search_path(&dirs, true),
    );
    let llp = format!(
        "{}:{}:relative-dir",
        fixture.path("nowhere").display(),
        fixture.path("override").display()
    );
    let (run, _) = assert_agree(
        &program,
        Execute,
        fixture.root.path(),
        &[("LD_LIBRARY_PATH", &llp)],
    );
    assert_eq!(
        run.searches[0].resolved.as_deref(),
        Some(override_copy.to_str().unwrap())
    );
}

#[test]
fn missing_library_stops_the_loader() {
    let fixture = Fixture::new();
    fixture.library("gone", "gone", &[], &[]);
    let dirs = vec![fixture.path("elsewhere").display().to_string()];
    let program = fixture.program("broken", &[("gone", "gone")], &search_path(&dirs, true));
    let (run, predicted) = assert_agree(&program, Execute, fixture.root.path(), &[]);
    assert_eq!(run.searches[0].resolved, None);
    let error = &predicted.json["objects"][0]["needed"][0]["error"];
    assert!(
        error
            .as_str()
            .unwrap()
            .contains("cannot open shared object file"),
        "{error}"
    );
}

#[test]
fn wrong_class_library_earlier_in_the_path_is_skipped() {
    let fixture = Fixture::new();
    fixture.library_with("lib32", "dual", &[], &[], &["-m32"]);
    let good = fixture.library("lib64", "dual", &[], &[]);
    let dirs: Vec<String> = ["lib32", "lib64"]
        .iter()
        .map(|d| fixture.path(d).display().to_string())
        .collect();
    let program = fixture.program("classy", &[("dual", "lib64")], &search_path(&dirs, true));
    let (run, predicted) = assert_agree(&program, Execute, fixture.root.path(), &[]);
    assert_eq!(
        run.searches[0].resolved.as_deref(),
        Some(good.to_str().unwrap())
    );
    let attempts = predicted.json["objects"][0]["needed"][0]["attempts"]
        .as_array()
        .unwrap();
    assert!(
        attempts.iter().any(|a| a["result"] == "other_class"),
        "{attempts:#?}"
    );
}

#[test]
fn empty_and_relative_runpath_entries() {
    let fixture = Fixture::new();
    fixture.library("rel/lib", "near", &[], &[]);
    let dirs = vec![
        "".to_string(),
        "rel/nothing".to_string(),
        "rel/lib".to_string(),
    ];
    let program = fixture.program(
        "relative",
        &[("near", "rel/lib")],
        &search_path(&dirs, true),
    );
    let (run, _) = assert_agree(&program, Execute, fixture.root.path(), &[]);
    assert_eq!(
        run.searches[0].resolved.as_deref(),
        Some("rel/lib/libnear.so")
    );
}
