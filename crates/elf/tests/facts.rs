//! The facts read from ELF files of every class and byte order, from synthetic files built here and
//! from files compiled with gcc.

use std::process::Command;

use ldcache_elf::{Class, Endian, Linkage, DF_1_NODEFLIB, NOTE_OWNER_NIXOS, NT_NIXOS_LDCACHE};

/// A minimal dynamically linked ELF file: one PT_LOAD covering everything, PT_INTERP, PT_DYNAMIC
/// (NEEDED, SONAME, RUNPATH, RPATH, FLAGS_1) and a PT_NOTE with one resolution-cache note.
fn synthetic(class: Class, endian: Endian) -> Vec<u8> {
    let wide = class == Class::Elf64;
    let (ehsize, phentsize, word) = if wide { (64, 56, 8) } else { (52, 32, 4) };
    let put = |out: &mut Vec<u8>, value: u64, size: usize| {
        let bytes = value.to_be_bytes();
        let field = &bytes[8 - size..];
        match endian {
            Endian::Big => out.extend_from_slice(field),
            Endian::Little => out.extend(field.iter().rev()),
        }
    };
    let phnum = 4;
    let interp = b"/lib/ld-test.so.1\0";
    let strtab = b"\0libneeded.so.1\0libself.so.2\0/run:/nix/store/x-a/lib\0/old\0";
    let (needed, soname, runpath, rpath) = (1, 16, 29, 53);
    let note_desc = b"libneeded.so.1\0=/nix/store/x-a/lib/libneeded.so.1\0\0";
    let interp_at = ehsize + phnum * phentsize;
    let strtab_at = interp_at + interp.len();
    let dynamic_at = (strtab_at + strtab.len() + 7) & !7;
    let dynamic: [(u64, u64); 8] = [
        (1, needed),
        (14, soname),
        (29, runpath),
        (15, rpath),
        (5, strtab_at as u64), // DT_STRTAB (vaddr == offset)
        (10, strtab.len() as u64),
        (0x6fff_fffb, DF_1_NODEFLIB),
        (0, 0),
    ];
    let note_at = dynamic_at + dynamic.len() * 2 * word;
    let note_len = 12 + 8 + note_desc.len().div_ceil(4) * 4;
    let total = note_at + note_len;

    let mut out = vec![0x7f, b'E', b'L', b'F'];
    out.push(if wide { 2 } else { 1 });
    out.push(if endian == Endian::Little { 1 } else { 2 });
    out.extend_from_slice(&[1, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    put(&mut out, 3, 2); // ET_DYN
    put(&mut out, 62, 2);
    put(&mut out, 1, 4);
    put(&mut out, 0, word); // entry
    put(&mut out, ehsize as u64, word); // phoff
    put(&mut out, 0, word); // shoff
    put(&mut out, 0, 4);
    put(&mut out, ehsize as u64, 2);
    put(&mut out, phentsize as u64, 2);
    put(&mut out, phnum as u64, 2);
    put(&mut out, 0, 2);
    put(&mut out, 0, 2);
    put(&mut out, 0, 2);
    assert_eq!(out.len(), ehsize);
    let segments = [
        (1u32, 0usize, total),
        (3, interp_at, interp.len()),
        (2, dynamic_at, dynamic.len() * 2 * word),
        (4, note_at, note_len),
    ];
    for (p_type, offset, size) in segments {
        let (offset, size) = (offset as u64, size as u64);
        put(&mut out, p_type.into(), 4);
        if wide {
            put(&mut out, 4, 4); // flags
            for value in [offset, offset, offset, size, size, 4] {
                put(&mut out, value, 8);
            }
        } else {
            for value in [offset, offset, offset, size, size, 4, 4] {
                put(&mut out, value, 4);
            }
        }
    }
    out.extend_from_slice(interp);
    out.extend_from_slice(strtab);
    out.resize(dynamic_at, 0);
    for (tag, value) in dynamic {
        put(&mut out, tag, word);
        put(&mut out, value, word);
    }
    put(&mut out, 6, 4);
    put(&mut out, note_desc.len() as u64, 4);
    put(&mut out, NT_NIXOS_LDCACHE.into(), 4);
    out.extend_from_slice(b"NixOS\0\0\0");
    out.extend_from_slice(note_desc);
    out.resize(total, 0);
    out
}

#[test]
fn every_class_and_byte_order() {
    for class in [Class::Elf32, Class::Elf64] {
        for endian in [Endian::Little, Endian::Big] {
            let info = ldcache_elf::parse(&synthetic(class, endian)).unwrap();
            assert_eq!((info.header.class, info.header.endian), (class, endian));
            assert_eq!(info.header.machine, 62);
            assert_eq!(info.linkage, Linkage::Dynamic);
            assert_eq!(info.interpreter.as_deref(), Some("/lib/ld-test.so.1"));
            assert_eq!(info.dynamic.needed, ["libneeded.so.1"]);
            assert_eq!(info.dynamic.soname.as_deref(), Some("libself.so.2"));
            assert_eq!(
                info.dynamic.runpath.as_deref(),
                Some("/run:/nix/store/x-a/lib")
            );
            assert_eq!(info.dynamic.rpath.as_deref(), Some("/old"));
            assert_eq!(info.dynamic.flags_1, DF_1_NODEFLIB);
            assert_eq!(
                info.search_path(),
                Some(("DT_RUNPATH", "/run:/nix/store/x-a/lib"))
            );
            let notes: Vec<_> = info.notes_of(NOTE_OWNER_NIXOS, NT_NIXOS_LDCACHE).collect();
            assert_eq!(notes.len(), 1);
            assert!(notes[0].desc.starts_with(b"libneeded.so.1\0=/nix/store"));
        }
    }
}

fn compile(dir: &std::path::Path, name: &str, args: &[&str]) -> Vec<u8> {
    let source = dir.join("x.c");
    std::fs::write(
        &source,
        "int f(void) { return 0; }\nint main(void) { return f(); }\n",
    )
    .unwrap();
    let out = dir.join(name);
    let status = Command::new("gcc")
        .args(args)
        .arg("-o")
        .arg(&out)
        .arg(&source)
        .status()
        .unwrap();
    assert!(status.success());
    std::fs::read(out).unwrap()
}

#[test]
fn kinds_of_files_compiled_here() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();

    let program = ldcache_elf::parse(&compile(
        dir,
        "dyn",
        &["-Wl,--disable-new-dtags,-rpath,/opt/x"],
    ))
    .unwrap();
    assert_eq!(program.linkage, Linkage::Dynamic);
    assert_eq!(program.dynamic.needed, ["libc.so.6"]);
    assert_eq!(program.search_path(), Some(("DT_RPATH", "/opt/x")));

    let object = ldcache_elf::parse(&compile(dir, "x.o", &["-c"])).unwrap();
    assert_eq!(object.linkage, Linkage::Relocatable);

    let fully_static = ldcache_elf::parse(&compile(dir, "static", &["-static"])).unwrap();
    assert_eq!(fully_static.linkage, Linkage::Static);

    let static_pie = ldcache_elf::parse(&compile(dir, "static-pie", &["-static-pie"])).unwrap();
    assert_eq!(static_pie.linkage, Linkage::StaticPie);

    let library =
        ldcache_elf::parse(&compile(dir, "lib.so", &["-shared", "-fPIC", "-m32"])).unwrap();
    assert_eq!(
        (library.header.class, library.header.machine),
        (Class::Elf32, 3)
    );
    assert_eq!(library.interpreter, None);

    let status = Command::new("objcopy")
        .args(["--only-keep-debug"])
        .arg(dir.join("dyn"))
        .arg(dir.join("dyn.debug"))
        .status()
        .unwrap();
    assert!(status.success());
    let debug = ldcache_elf::parse(&std::fs::read(dir.join("dyn.debug")).unwrap()).unwrap();
    assert_eq!(debug.linkage, Linkage::SeparateDebug);

    // Without section headers the facts are the same: they come from program headers only.
    let mut stripped = std::fs::read(dir.join("dyn")).unwrap();
    stripped[40..48].fill(0); // e_shoff
    stripped[60..64].fill(0); // e_shnum, e_shstrndx
    let bare = ldcache_elf::parse(&stripped).unwrap();
    assert_eq!(bare.dynamic, program.dynamic);
    assert_eq!(bare.interpreter, program.interpreter);
}
