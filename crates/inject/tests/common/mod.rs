//! What the injector tests share.

use ldcache_note::{Cache, Computed, Entry, Fingerprint, Place, SearchTag};

/// The note `ldcache embed` would write if each needed library lived in its own store path.
pub fn payload_for(info: &ldcache_elf::ElfInfo) -> Vec<u8> {
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
