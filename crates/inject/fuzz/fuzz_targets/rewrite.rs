//! Arbitrary bytes through the reader, the note decoders and the injector. The injector may refuse
//! anything, but whatever it writes must pass the oracle, be stable on a second run and survive the
//! removal of the note.

#![no_main]

use ldcache_elf::Endian;
use ldcache_inject::check::check;
use ldcache_inject::{rewrite, Refusal, SELF_CHECK_FAILED};
use ldcache_note::{Cache, Computed, Entry, Fingerprint, Place, SearchTag};
use libfuzzer_sys::fuzz_target;

fn payload(endian: Endian) -> Vec<u8> {
    let computed = Computed {
        cache: Cache {
            entries: vec![Entry {
                soname: "libz.so.1".into(),
                places: vec![
                    Place::Search("$ORIGIN/../lib".into()),
                    Place::File("/nix/store/0123456789abcdfghijklmnpqrsvwxyz-zlib/lib/libz.so.1".into()),
                ],
            }],
        },
        fingerprint: Fingerprint::of(SearchTag::Runpath, "/nix/store/x/lib"),
    };
    computed.section(endian)
}

/// A refusal is fine, unless the injector produced something its own check rejected.
fn planned_soundly<T>(result: &Result<T, Refusal>) {
    if let Err(refusal) = result {
        assert!(!refusal.reason().starts_with(SELF_CHECK_FAILED), "{refusal}");
    }
}

fuzz_target!(|data: &[u8]| {
    let _ = Cache::decode(data);
    let _ = Fingerprint::decode(data, Endian::Little);
    let Ok(info) = ldcache_elf::parse(data) else {
        planned_soundly(&rewrite(data, None));
        return;
    };
    let _ = info.dlopen_entries();
    let payload = payload(info.header.endian);
    let inserted = rewrite(data, Some(&payload));
    planned_soundly(&inserted);
    if let Ok(Some(new)) = inserted {
        check(data, &new).unwrap_or_else(|e| panic!("oracle: {e}"));
        assert_eq!(rewrite(&new, Some(&payload)), Ok(None), "a second run changes the file");
        let stripped = rewrite(&new, None);
        planned_soundly(&stripped);
        if let Ok(Some(stripped)) = stripped {
            check(&new, &stripped).unwrap_or_else(|e| panic!("oracle after removal: {e}"));
        }
    }
    let stripped = rewrite(data, None);
    planned_soundly(&stripped);
    if let Ok(Some(stripped)) = stripped {
        check(data, &stripped).unwrap_or_else(|e| panic!("oracle after removal: {e}"));
    }
});
