//! Arbitrary bytes through the reader, the note decoders and the injector. The injector may refuse
//! anything, but not because its output failed its own check (that last line of defence leaves the
//! file alone, but it is a defect of the injector), nothing may panic, and whatever it writes must
//! pass the oracle, differ from
//! the input only where the injector says it wrote, be stable on a second run and survive the
//! removal of the note.

#![no_main]

use ldcache_elf::Endian;
use ldcache_inject::check::check;
use ldcache_inject::{rewrite, rewrite_into, Edit, SELF_CHECK_FAILED};
use ldcache_note::{Cache, Computed, Entry, Fingerprint, Place, SearchTag};
use libfuzzer_sys::fuzz_target;

fn payload(endian: Endian) -> Vec<u8> {
    let computed = Computed {
        cache: Cache {
            entries: vec![Entry {
                soname: "libz.so.1".into(),
                places: vec![
                    Place::Search("$ORIGIN/../lib".into()),
                    Place::File(
                        "/nix/store/0123456789abcdfghijklmnpqrsvwxyz-zlib/lib/libz.so.1".into(),
                    ),
                ],
            }],
        },
        fingerprint: Fingerprint::of(SearchTag::Runpath, "/nix/store/x/lib"),
    };
    computed.section(endian)
}

fuzz_target!(|data: &[u8]| {
    let _ = Cache::decode(data);
    let _ = Fingerprint::decode(data, Endian::Little);
    let Ok(info) = ldcache_elf::parse(data) else {
        let _ = rewrite(data, None);
        return;
    };
    let _ = info.dlopen_entries();
    let payload = payload(info.header.endian);
    let result = rewrite_into(data, Some(&payload), || data.to_vec());
    if let Err(refusal) = &result {
        let reason = refusal.to_string();
        assert!(
            !reason.starts_with(SELF_CHECK_FAILED),
            "the injector wrote what its own check rejects: {reason}"
        );
    }
    if let Ok(Some(rewritten)) = result {
        let new = rewritten.bytes;
        check(data, &new).unwrap_or_else(|e| panic!("oracle: {e}"));
        assert_eq!(
            Edit::within(data, &new, &rewritten.written),
            Edit::between(data, &new),
            "a difference outside the ranges the injector says it wrote"
        );
        assert_eq!(
            rewrite(&new, Some(&payload)),
            Ok(None),
            "a second run changes the file"
        );
        if let Ok(Some(stripped)) = rewrite(&new, None) {
            check(&new, &stripped).unwrap_or_else(|e| panic!("oracle after removal: {e}"));
        }
    }
    if let Ok(Some(stripped)) = rewrite(data, None) {
        check(data, &stripped).unwrap_or_else(|e| panic!("oracle after removal: {e}"));
    }
});
