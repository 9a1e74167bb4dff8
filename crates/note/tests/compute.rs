//! The rules of `compute`, on a store laid out in a temporary directory.

use std::path::Path;

use ldcache_elf::{
    Class, Dynamic, ElfInfo, Endian, Header, Linkage, Note, NOTE_OWNER_FDO, NT_FDO_DLOPEN,
};
use ldcache_note::{compute, Cache, Fingerprint, Place, Rules, SearchTag};

const X86_64: Header = Header {
    class: Class::Elf64,
    endian: Endian::Little,
    e_type: 3,
    machine: 62,
    osabi: 0,
};

fn object(needed: &[&str], runpath: Option<&str>, rpath: Option<&str>) -> ElfInfo {
    ElfInfo {
        header: X86_64,
        linkage: Linkage::Dynamic,
        interpreter: None,
        dynamic: Dynamic {
            needed: needed.iter().map(|s| s.to_string()).collect(),
            soname: None,
            runpath: runpath.map(str::to_string),
            rpath: rpath.map(str::to_string),
            flags_1: 0,
        },
        notes: Vec::new(),
    }
}

/// An ELF header of the given class for x86-64, enough for the loader's (and compute's) check.
fn elf_file(path: &Path, class: Class) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut bytes = vec![
        0x7f,
        b'E',
        b'L',
        b'F',
        if class == Class::Elf64 { 2 } else { 1 },
        1,
        1,
        0,
    ];
    bytes.resize(16, 0);
    bytes.extend_from_slice(&3u16.to_le_bytes());
    bytes.extend_from_slice(&(if class == Class::Elf64 { 62u16 } else { 3 }).to_le_bytes());
    bytes.resize(64, 0);
    std::fs::write(path, bytes).unwrap();
}

fn places(cache: &Cache, soname: &str) -> Vec<String> {
    cache
        .lookup(soname)
        .unwrap_or_default()
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn rules_for_each_kind_of_entry() {
    let root = tempfile::tempdir().unwrap();
    let store = root.path().join("store");
    let s = |p: &str| format!("{}/{p}", store.display());
    elf_file(&store.join("a-zlib/lib/libz.so.1"), Class::Elf64);
    elf_file(&store.join("b-other/lib/libz.so.1"), Class::Elf64);
    elf_file(&store.join("c-lib32/lib/libx.so"), Class::Elf32);
    elf_file(&store.join("d-x/lib/libx.so"), Class::Elf64);
    elf_file(
        &store.join("e-hw/lib/glibc-hwcaps/x86-64-v3/libhw.so"),
        Class::Elf64,
    );
    std::fs::create_dir_all(store.join("f-empty/lib")).unwrap();
    std::fs::create_dir_all(store.join("g-hw-without/lib/glibc-hwcaps/x86-64-v2")).unwrap();
    let outside = root.path().join("run/opengl-driver/lib");
    elf_file(&outside.join("libGL.so.1"), Class::Elf64);

    let runpath = [
        outside.display().to_string(),
        s("f-empty/lib"),
        s("g-hw-without/lib"),
        s("e-hw/lib"),
        s("c-lib32/lib"),
        s("a-zlib/lib"),
        "$ORIGIN/../lib".to_string(),
        s("d-x/lib/"),
        s("b-other/lib"),
        s("missing-pkg/lib"),
        String::new(),
        "relative/lib".to_string(),
    ]
    .join(":");
    let info = object(
        &[
            "libz.so.1",
            "libx.so",
            "libhw.so",
            "libGL.so.1",
            "libnowhere.so",
            "/abs/libpath.so",
        ],
        Some(&runpath),
        None,
    );
    let computed = compute(&info, &Rules::new(&store.display().to_string())).unwrap();
    let cache = &computed.cache;
    let hint = format!("?{}", outside.display());

    // The first store directory holding it ends the list; empty store directories are dropped.
    assert_eq!(
        places(cache, "libz.so.1"),
        [hint.clone(), format!("={}", s("a-zlib/lib/libz.so.1"))]
    );
    // A file of another class is skipped, as the loader skips it; hints before it stay.
    assert_eq!(
        places(cache, "libx.so"),
        [
            hint.clone(),
            "?$ORIGIN/../lib".into(),
            format!("={}", s("d-x/lib/libx.so"))
        ]
    );
    // A store directory with glibc-hwcaps holding the soname in a subdirectory: a hint that ends it.
    assert_eq!(
        places(cache, "libhw.so"),
        [hint.clone(), format!("?{}", s("e-hw/lib"))]
    );
    // Outside the store, a present file is still only a hint: it may change after the build.
    assert_eq!(places(cache, "libGL.so.1")[0], hint);
    // Found nowhere: the hints alone, which still prune every store directory.
    assert_eq!(
        places(cache, "libnowhere.so"),
        [
            hint,
            "?$ORIGIN/../lib".into(),
            "?".into(),
            "?relative/lib".into()
        ]
    );
    // Names with a slash are not searched.
    assert!(cache.lookup("/abs/libpath.so").is_none());
    assert_eq!(
        computed.fingerprint,
        Fingerprint::of(SearchTag::Runpath, &runpath)
    );
}

#[test]
fn rpath_when_there_is_no_runpath_and_nothing_without_a_search_path() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("store/a-x/lib");
    elf_file(&dir.join("libx.so"), Class::Elf64);
    let rules = Rules::new(&root.path().join("store").display().to_string());
    let rpath = dir.display().to_string();
    let computed = compute(&object(&["libx.so"], None, Some(&rpath)), &rules).unwrap();
    assert_eq!(computed.fingerprint.tag, SearchTag::Rpath);
    assert_eq!(
        places(&computed.cache, "libx.so"),
        [format!("={rpath}/libx.so")]
    );
    // DT_RUNPATH wins over DT_RPATH, as in the loader.
    let both = compute(
        &object(&["libx.so"], Some(&rpath), Some("/elsewhere")),
        &rules,
    )
    .unwrap();
    assert_eq!(both.fingerprint.tag, SearchTag::Runpath);
    assert!(compute(&object(&["libx.so"], None, None), &rules).is_none());
    // Only store directories that lack it: nothing to record.
    assert!(compute(&object(&["liby.so"], Some(&rpath), None), &rules).is_none());
    // Hints for every entry of the search path prune nothing: nothing to record either.
    let outside = "/usr/lib/x:$ORIGIN:/usr/lib/x";
    assert!(compute(&object(&["libx.so"], Some(outside), None), &rules).is_none());
    // But hints that end at a store directory with glibc-hwcaps prune what follows it.
    let hw = root.path().join("store/b-hw/lib");
    elf_file(&hw.join("glibc-hwcaps/x86-64-v3/libhw.so"), Class::Elf64);
    let search = format!("/usr/lib/x:{}:{rpath}", hw.display());
    let computed = compute(&object(&["libhw.so"], Some(&search), None), &rules).unwrap();
    assert_eq!(computed.cache.entries[0].places.len(), 2);
}

#[test]
fn dlopen_note_sonames_are_cached_too() {
    let root = tempfile::tempdir().unwrap();
    let dir = root.path().join("store/a-zstd/lib");
    elf_file(&dir.join("libzstd.so.1"), Class::Elf64);
    let mut info = object(&["libc.so.6"], Some(&dir.display().to_string()), None);
    let json = br#"[{"feature":"zstd","soname":["libzstd.so.1","libzstd.so.0"],"priority":"recommended"}]"#;
    info.notes.push(Note {
        owner: NOTE_OWNER_FDO.to_vec(),
        n_type: NT_FDO_DLOPEN,
        desc: json.to_vec(),
        offset: 0,
        size: 0,
    });
    let rules = Rules::new(&root.path().join("store").display().to_string());
    let computed = compute(&info, &rules).unwrap();
    let sonames: Vec<&str> = computed
        .cache
        .entries
        .iter()
        .map(|e| e.soname.as_str())
        .collect();
    assert_eq!(sonames, ["libzstd.so.1"]);
    assert_eq!(
        computed.cache.entries[0].places,
        [Place::File(format!("{}/libzstd.so.1", dir.display()))]
    );
}

#[test]
fn same_input_same_bytes_whatever_the_order_of_needs() {
    let root = tempfile::tempdir().unwrap();
    let store = root.path().join("store");
    let mut dirs = Vec::new();
    let mut needed = Vec::new();
    for i in 0..20 {
        let dir = store.join(format!("{i:02}-p/lib"));
        elf_file(&dir.join(format!("lib{i}.so")), Class::Elf64);
        dirs.push(dir.display().to_string());
        needed.push(format!("lib{i}.so"));
    }
    let rules = Rules::new(&store.display().to_string());
    let runpath = dirs.join(":");
    let forward: Vec<&str> = needed.iter().map(String::as_str).collect();
    let backward: Vec<&str> = forward.iter().rev().copied().collect();
    let a = compute(&object(&forward, Some(&runpath), None), &rules).unwrap();
    let b = compute(&object(&backward, Some(&runpath), None), &rules).unwrap();
    assert_eq!(a.cache.encode(), b.cache.encode());
    assert_eq!(Cache::decode(&a.cache.encode()).unwrap(), a.cache);
}
