//! What the injector tests share.

use ldcache_note::{Cache, Computed, Entry, Fingerprint, Place, SearchTag};

/// The notes `ldcache embed` would compute if each needed library lived in its own store path.
pub fn notes_for(info: &ldcache_elf::ElfInfo) -> Computed {
    let mut entries: Vec<Entry> = info
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
    // In the order the encoder writes them (by soname), so that a decoded note compares equal.
    entries.sort_by(|a, b| a.soname.cmp(&b.soname));
    Computed {
        cache: Cache { entries },
        fingerprint: Fingerprint::of(SearchTag::Runpath, "/nix/store/x/lib"),
    }
}
