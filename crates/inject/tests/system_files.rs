//! Every dynamically linked program and library of this system, rewritten in memory with a
//! realistic note: the oracle passes, the note reads back as written, a second run changes nothing, removing the
//! note passes the oracle too and re-adding it gives the same bytes again; every difference lies in
//! the ranges the injector says it wrote. At most 1 % refused, at most 0.1 % for any one reason,
//! none by the injector's self-check (that would be a defect of the injector).

mod common;

use common::notes_for;
use ldcache_elf::{Endian, Linkage};
use ldcache_note::Present;

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
        let notes = notes_for(&info);
        let payload = notes.section(info.header.endian);
        let new = match ldcache_inject::rewrite_into(&data, Some(&payload), || data.clone()) {
            Ok(Some(new)) => new,
            Ok(None) => panic!("{}: already carries this note?", path.display()),
            Err(refusal) => {
                let reason = refusal.to_string();
                assert!(
                    !reason.starts_with(ldcache_inject::SELF_CHECK_FAILED),
                    "an injector defect, not a refusal: {}: {reason}",
                    path.display()
                );
                refused.push(format!("{}: {reason}", path.display()));
                continue;
            }
        };
        let fail = |what: &str, e: String| -> ! { panic!("{}: {what}: {e}", path.display()) };
        let (new, written) = (new.bytes, new.written);
        ldcache_inject::check::check(&data, &new).unwrap_or_else(|e| fail("oracle", e));
        // The writes, applied to the old bytes, give the new ones; the ranges the injector says
        // it wrote hold every difference (the edit from them alone is the whole edit).
        let edit = ldcache_inject::Edit::between(&data, &new);
        assert_eq!(edit.apply(&data), new);
        assert_eq!(ldcache_inject::Edit::within(&data, &new, &written), edit);
        // The independent reader finds the note where the loader will look: in a PT_NOTE.
        let reread = ldcache_elf::parse(&new).unwrap_or_else(|e| fail("reread", e.to_string()));
        // ... and decodes it to exactly what was asked to be written.
        let present = Present::read(&reread).expect("note present");
        assert_eq!(present.cache, Ok(notes.cache.clone()), "{}", path.display());
        assert_eq!(
            present.fingerprint,
            Some(Ok(notes.fingerprint)),
            "{}",
            path.display()
        );
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
    let files = rewritten + refused.len();
    assert!(refused.len() * 100 <= files, "more than 1 % refused");
    // Counted by reason (numbers aside): none is known on system files, so each may reach
    // 0.1 % of them (the corpus suites' bound for a reason they do not know).
    let mut by_reason = std::collections::BTreeMap::<String, usize>::new();
    for r in &refused {
        let reason = r.split_once(": ").map_or(r.as_str(), |(_, reason)| reason);
        *by_reason.entry(reason_kind(reason)).or_default() += 1;
    }
    for (reason, n) in by_reason {
        eprintln!("{n} refused: {reason}");
        assert!(
            n * 1000 <= files,
            "{n} of {files} refused for one reason: {reason}"
        );
    }
}

/// A refusal's reason with its numbers replaced by N, so that one cause counts once.
fn reason_kind(reason: &str) -> String {
    let mut kind = String::new();
    let mut chars = reason.chars().peekable();
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() {
            while chars
                .next_if(|c| c.is_ascii_hexdigit() || *c == 'x')
                .is_some()
            {}
            kind.push('N');
        } else {
            kind.push(c);
        }
    }
    kind
}
