//! `ldcache explain` against the real loader on the programs of this system: for every dynamically
//! linked program in /usr/bin (at least 50), `ld.so --list` under strace and `LD_DEBUG=libs` resolves
//! each searched library to the path predicted, with the predicted failing calls.

mod oracle;

use std::path::PathBuf;

use oracle::{assert_agree, Run, SYSTEM_LOADER};

/// Programs of /usr/bin that name the system loader as their interpreter, in name order. Chosen by
/// a check independent of the reader under test: ELF magic, and the loader's name (PT_INTERP) within
/// the first page.
fn system_programs() -> Vec<PathBuf> {
    let mut programs: Vec<PathBuf> = std::fs::read_dir("/usr/bin")
        .unwrap()
        .filter_map(|entry| {
            let path = entry.ok()?.path();
            let data = std::fs::read(&path).ok()?;
            let head = &data[..data.len().min(4096)];
            let interp = [SYSTEM_LOADER.as_bytes(), b"\0"].concat();
            let uses_loader =
                head.starts_with(b"\x7fELF") && head.windows(interp.len()).any(|w| w == interp);
            (!path.is_symlink() && uses_loader).then_some(path)
        })
        .collect();
    programs.sort();
    programs
}

#[test]
fn resolves_like_the_loader_for_system_programs() {
    let programs = system_programs();
    assert!(
        programs.len() >= 50,
        "only {} programs found",
        programs.len()
    );
    let cwd = std::env::temp_dir();
    let mut checked = 0;
    let mut searches = 0;
    for program in &programs {
        let (observed, _) = assert_agree(program, Run::List, &cwd, &[]);
        checked += 1;
        searches += observed.searches.len();
    }
    eprintln!("{checked} programs, {searches} searches agree with the loader");
    assert!(searches >= checked, "every program searched at least libc");
}
