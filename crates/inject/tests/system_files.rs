//! Every dynamically linked program and library of this system, rewritten in memory with a
//! realistic note: the oracle passes, the note reads back, a second run changes nothing, removing the
//! note passes the oracle too and re-adding it gives the same bytes again. At most 1 % refused.

use ldcache_elf::{Endian, Linkage};
use ldcache_note::{Cache, Computed, Entry, Fingerprint, Place, Present, SearchTag};

/// The note `ldcache embed` would write if each needed library lived in its own store path.
fn payload_for(info: &ldcache_elf::ElfInfo) -> Vec<u8> {
    let entries = info
        .dynamic
        .needed
        .iter()
        .map(|soname| Entry {
            soname: soname.clone(),
            places: vec![
                Place::Search("/run/opengl-driver/lib".into()),
                Place::File(format!(
                    "/nix/store/0123456789abcdfghijklmnpqrsvwxyz-{soname}/lib/{soname}"
                )),
            ],
        })
        .collect();
    let computed = Computed {
        cache: Cache { entries },
        fingerprint: Fingerprint::of(SearchTag::Runpath, "/nix/store/x/lib"),
    };
    computed.section(info.header.endian)
}

fn system_files() -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for dir in ["/usr/bin", "/usr/sbin", "/usr/lib/x86_64-linux-gnu"] {
        for entry in walkdir(dir) {
            files.push(entry);
        }
    }
    files
}

fn walkdir(dir: &str) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![std::path::PathBuf::from(dir)];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if kind.is_dir() {
                stack.push(path);
            } else if kind.is_file() {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn rewrite_every_dynamic_elf_file_of_the_system() {
    let mut rewritten = 0;
    let mut refused = Vec::new();
    let mut growth = Vec::new();
    let mut own_segment = 0;
    let loads = |data: &[u8]| {
        object::read::elf::ElfFile64::<object::Endianness>::parse(data).map_or(0, |f| {
            use object::Object;
            f.segments().count()
        })
    };
    for path in system_files() {
        let Ok(data) = std::fs::read(&path) else {
            continue;
        };
        let Ok(info) = ldcache_elf::parse(&data) else {
            continue;
        };
        if info.linkage != Linkage::Dynamic
            || !matches!(info.header.e_type, 2 | 3)
            || info.header.endian != Endian::Little
        {
            continue;
        }
        let payload = payload_for(&info);
        let new = match ldcache_inject::rewrite(&data, Some(&payload)) {
            Ok(Some(new)) => new,
            Ok(None) => panic!("{}: already carries this note?", path.display()),
            Err(refusal) => {
                refused.push(format!("{}: {refusal}", path.display()));
                continue;
            }
        };
        let fail = |what: &str, e: String| -> ! { panic!("{}: {what}: {e}", path.display()) };
        ldcache_inject::check::check(&data, &new).unwrap_or_else(|e| fail("oracle", e));
        // The writes, applied to the old bytes, give the new ones.
        assert_eq!(ldcache_inject::Edit::between(&data, &new).apply(&data), new);
        // The independent reader finds the note where the loader will look: in a PT_NOTE.
        let reread = ldcache_elf::parse(&new).unwrap_or_else(|e| fail("reread", e.to_string()));
        let present = Present::read(&reread).expect("note present");
        assert_eq!(
            present.cache.as_ref().unwrap().entries.len(),
            info.dynamic.needed.len()
        );
        assert!(present.fingerprint.unwrap().is_ok());
        assert_eq!(reread.dynamic, info.dynamic);
        // Idempotent; removable; re-addable to the same bytes.
        assert_eq!(
            ldcache_inject::rewrite(&new, Some(&payload)).unwrap(),
            None,
            "{}",
            path.display()
        );
        let stripped = ldcache_inject::rewrite(&new, None)
            .unwrap()
            .expect("note removed");
        ldcache_inject::check::check(&new, &stripped)
            .unwrap_or_else(|e| fail("oracle after removal", e));
        assert!(Present::read(&ldcache_elf::parse(&stripped).unwrap()).is_none());
        let again = ldcache_inject::rewrite(&stripped, Some(&payload))
            .unwrap()
            .expect("note re-added");
        assert_eq!(again, new, "{}: re-adding differs", path.display());
        growth.push(new.len() - data.len());
        own_segment += usize::from(loads(&new) > loads(&data));
        rewritten += 1;
    }
    growth.sort_unstable();
    eprintln!(
        "{rewritten} rewritten ({own_segment} needed a load segment of their own), {} refused; growth median {} B, max {} B",
        refused.len(),
        growth[growth.len() / 2],
        growth[growth.len() - 1]
    );
    for r in &refused {
        eprintln!("refused {r}");
    }
    assert!(rewritten >= 900, "only {rewritten} files");
    assert!(
        refused.len() * 100 <= rewritten + refused.len(),
        "more than 1 % refused"
    );
}
