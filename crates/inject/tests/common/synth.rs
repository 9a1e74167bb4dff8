//! A small dynamically linked program, made in memory for any ELF class and byte order, laid out
//! as GNU ld lays out a position-independent executable with `-z separate-code`:
//!
//! ```text
//! read-only   ELF header, program headers, .interp, .note.gnu.property, .note.gnu.build-id,
//!             .note.ABI-tag, .gnu.hash, .dynsym, .dynstr   (then zero padding to the page)
//! executable  .text
//! read-only   .rodata
//! writable    .dynamic, .data, .bss                      (one page higher in memory)
//! not loaded  .symtab, .strtab, .shstrtab, section headers
//! ```
//!
//! Program headers: `PT_PHDR`, `PT_INTERP`, four `PT_LOAD`, `PT_DYNAMIC`, the notes' `PT_NOTE`s,
//! `PT_GNU_PROPERTY`, `PT_GNU_STACK`. ELF64 has an 8-byte-aligned `PT_NOTE` for the property note
//! and a 4-byte-aligned one for the other two; ELF32 has one 4-byte-aligned `PT_NOTE` for all
//! three, as i386 files have. [`Options`] leave out the notes, the GNU hash table or the section
//! headers. It never runs (its code is filler), but every structure the injector and its oracle
//! read is real, and no host file is needed.

use super::fields::{Class, Eh, Fields, Ph, Sh};

const PAGE: usize = 0x1000;
/// The writable segment's addresses are its offsets plus this, as in linked files.
const DATA_SHIFT: u64 = 0x1000;

pub const INTERPRETER: &str = "/nix/store/0123456789abcdfghijklmnpqrsvwxyz-glibc-2.42/lib/ld.so";
pub const NEEDED: [&str; 2] = ["libgreet.so.1", "libc.so.6"];
pub const RUNPATH: &str = "/nix/store/0123456789abcdfghijklmnpqrsvwxyz-greet-1.0/lib:\
                           /nix/store/0123456789abcdfghijklmnpqrsvwxyz-glibc-2.42/lib";

/// What the program has besides the essentials.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Section headers; without them the table and names stay in the file, unreferenced, as
    /// stripping them leaves a file.
    pub section_headers: bool,
    /// `.note.gnu.property`, `.note.gnu.build-id`, `.note.ABI-tag` and their program headers.
    pub notes: bool,
    /// `.gnu.hash` (without it `.dynsym` follows the notes or `.interp`).
    pub gnu_hash: bool,
    pub interpreter: &'static str,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            section_headers: true,
            notes: true,
            gnu_hash: true,
            interpreter: INTERPRETER,
        }
    }
}

struct Section {
    name: &'static str,
    sh_type: u32,
    flags: u64,
    offset: usize,
    /// The size in memory (`.bss`: nothing in the file).
    size: usize,
    link: u32,
    info: u32,
    align: usize,
    entsize: usize,
}

/// The file being built: bytes, and the sections placed so far.
struct Builder {
    class: Class,
    data: Vec<u8>,
    sections: Vec<Section>,
}

impl Fields for Builder {
    fn class(&self) -> Class {
        self.class
    }

    fn raw(&self) -> &[u8] {
        &self.data
    }

    fn raw_mut(&mut self) -> &mut [u8] {
        &mut self.data
    }
}

impl Builder {
    fn align(&mut self, align: usize) -> usize {
        let at = self.data.len().next_multiple_of(align);
        self.data.resize(at, 0);
        at
    }

    fn word(&self, value: u64) -> Vec<u8> {
        self.class.bytes(value, self.class.word())
    }

    fn u32(&self, value: u32) -> Vec<u8> {
        self.class.bytes(value.into(), 4)
    }

    /// A section with `contents` at the next `align`ed offset; its index.
    fn section(
        &mut self,
        name: &'static str,
        sh_type: u32,
        flags: u64,
        align: usize,
        contents: &[u8],
    ) -> usize {
        let offset = self.align(align);
        self.data.extend_from_slice(contents);
        self.sections.push(Section {
            name,
            sh_type,
            flags,
            offset,
            size: contents.len(),
            link: 0,
            info: 0,
            align,
            entsize: 0,
        });
        self.sections.len() - 1
    }

    /// A note with owner `GNU`, padded to `align`.
    fn gnu_note(&self, n_type: u32, desc: &[u8], align: usize) -> Vec<u8> {
        let mut note = [self.u32(4), self.u32(desc.len() as u32), self.u32(n_type)].concat();
        note.extend_from_slice(b"GNU\0");
        note.extend_from_slice(desc);
        note.resize(note.len().next_multiple_of(align), 0);
        note
    }

    /// A symbol table entry.
    fn symbol(&self, name: u32, value: u64, size: u64, info: u8, shndx: u16) -> Vec<u8> {
        let c = self.class;
        if c.is_64 {
            [
                self.u32(name),
                vec![info, 0],
                c.bytes(shndx.into(), 2),
                c.bytes(value, 8),
                c.bytes(size, 8),
            ]
            .concat()
        } else {
            [
                self.u32(name),
                c.bytes(value, 4),
                c.bytes(size, 4),
                vec![info, 0],
                c.bytes(shndx.into(), 2),
            ]
            .concat()
        }
    }

    fn address(&self, offset: usize) -> u64 {
        let writable = self.sections.iter().find(|s| s.name == ".dynamic");
        match writable {
            Some(dynamic) if offset >= dynamic.offset => offset as u64 + DATA_SHIFT,
            _ => offset as u64,
        }
    }
}

/// Bytes that are not zero and differ from place to place, as code and data are.
fn filler(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) | 1)
        .collect()
}

/// A string table of `names`, and where each name starts in it.
fn string_table(names: &[&str]) -> (Vec<u8>, Vec<u32>) {
    let mut table = vec![0];
    let mut at = Vec::new();
    for name in names {
        at.push(table.len() as u32);
        table.extend_from_slice(name.as_bytes());
        table.push(0);
    }
    (table, at)
}

const SHT_PROGBITS: u32 = 1;
const SHT_SYMTAB: u32 = 2;
const SHT_STRTAB: u32 = 3;
const SHT_DYNAMIC: u32 = 6;
const SHT_NOTE: u32 = 7;
const SHT_NOBITS: u32 = 8;
const SHT_DYNSYM: u32 = 11;
const SHT_GNU_HASH: u32 = 0x6fff_fff6;
const SHF_WRITE: u64 = 1;
const SHF_ALLOC: u64 = 2;
const SHF_EXECINSTR: u64 = 4;

const PT_LOAD: u32 = 1;
const PT_DYNAMIC: u32 = 2;
const PT_INTERP: u32 = 3;
const PT_NOTE: u32 = 4;
const PT_PHDR: u32 = 6;
const PT_GNU_STACK: u32 = 0x6474_e551;
const PT_GNU_PROPERTY: u32 = 0x6474_e553;
const PF_X: u32 = 1;
const PF_W: u32 = 2;
const PF_R: u32 = 4;

/// The program for `class`, with what `options` say.
pub fn program(class: Class, options: Options) -> Vec<u8> {
    let mut b = Builder {
        class,
        data: Vec::new(),
        sections: Vec::new(),
    };
    let w = class.word();
    let phnum = match (options.notes, class.is_64) {
        (false, _) => 8,
        (true, true) => 11,
        (true, false) => 10,
    };
    b.data.resize(class.ehsize() + phnum * class.phentsize(), 0);
    b.sections.push(Section {
        name: "",
        sh_type: 0,
        flags: 0,
        offset: 0,
        size: 0,
        link: 0,
        info: 0,
        align: 0,
        entsize: 0,
    });

    // The read-only segment before the code.
    let interp = b.section(
        ".interp",
        SHT_PROGBITS,
        SHF_ALLOC,
        1,
        format!("{}\0", options.interpreter).as_bytes(),
    );
    let notes = options.notes.then(|| {
        // GNU_PROPERTY_X86_FEATURE_1_AND = IBT | SHSTK, padded to the word.
        let mut property_desc = [b.u32(0xc000_0002), b.u32(4), b.u32(3)].concat();
        property_desc.resize(property_desc.len().next_multiple_of(w), 0);
        let note = b.gnu_note(5, &property_desc, w);
        let property = b.section(".note.gnu.property", SHT_NOTE, SHF_ALLOC, w, &note);
        let note = b.gnu_note(3, &filler(20, 7), 4);
        let build_id = b.section(".note.gnu.build-id", SHT_NOTE, SHF_ALLOC, 4, &note);
        let abi_desc = [b.u32(0), b.u32(3), b.u32(2), b.u32(0)].concat();
        let note = b.gnu_note(1, &abi_desc, 4);
        let abi_tag = b.section(".note.ABI-tag", SHT_NOTE, SHF_ALLOC, 4, &note);
        (property, build_id, abi_tag)
    });

    let (dynstr_bytes, dynstr_at) = string_table(&[NEEDED[0], NEEDED[1], "greet", RUNPATH]);
    // Every dynamic symbol is undefined, so the GNU hash table has one empty bucket.
    let gnu_hash = options.gnu_hash.then(|| {
        let table = [b.u32(1), b.u32(2), b.u32(1), b.u32(6), b.word(0), b.u32(0)].concat();
        b.section(".gnu.hash", SHT_GNU_HASH, SHF_ALLOC, w, &table)
    });
    let dynsym_bytes = [
        b.symbol(0, 0, 0, 0, 0),
        b.symbol(dynstr_at[2], 0, 0, 0x12, 0), // greet: global function, undefined
    ]
    .concat();
    let dynsym = b.section(".dynsym", SHT_DYNSYM, SHF_ALLOC, w, &dynsym_bytes);
    let dynstr = b.section(".dynstr", SHT_STRTAB, SHF_ALLOC, 1, &dynstr_bytes);
    let first_end = b.data.len();

    b.align(PAGE);
    let text = b.section(
        ".text",
        SHT_PROGBITS,
        SHF_ALLOC | SHF_EXECINSTR,
        16,
        &filler(0x600, 1),
    );
    let text_end = b.data.len();
    b.align(PAGE);
    b.section(".rodata", SHT_PROGBITS, SHF_ALLOC, 16, &filler(0x100, 2));
    let rodata_end = b.data.len();

    // The writable segment: .dynamic, .data, .bss.
    b.align(PAGE);
    let dynamic_at = b.data.len();
    b.sections.push(Section {
        name: ".dynamic",
        sh_type: SHT_DYNAMIC,
        flags: SHF_ALLOC | SHF_WRITE,
        offset: dynamic_at,
        size: 0,
        link: 0,
        info: 0,
        align: w,
        entsize: 2 * w,
    });
    let at = |b: &Builder, i: usize| b.address(b.sections[i].offset);
    let mut entries: Vec<(u64, u64)> = vec![
        (1, dynstr_at[0].into()),  // DT_NEEDED
        (1, dynstr_at[1].into()),  // DT_NEEDED
        (29, dynstr_at[3].into()), // DT_RUNPATH
    ];
    if let Some(gnu_hash) = gnu_hash {
        entries.push((0x6fff_fef5, at(&b, gnu_hash))); // DT_GNU_HASH
    }
    entries.extend([
        (5, at(&b, dynstr)),                     // DT_STRTAB
        (6, at(&b, dynsym)),                     // DT_SYMTAB
        (10, dynstr_bytes.len() as u64),         // DT_STRSZ
        (11, if class.is_64 { 24 } else { 16 }), // DT_SYMENT
        (21, 0),                                 // DT_DEBUG
        (0x6fff_fffb, 0x0800_0001),              // DT_FLAGS_1: NOW | PIE
        (0, 0),                                  // DT_NULL
    ]);
    let dynamic_bytes: Vec<u8> = entries
        .iter()
        .flat_map(|&(tag, value)| [b.word(tag), b.word(value)].concat())
        .collect();
    b.data.extend_from_slice(&dynamic_bytes);
    let dynamic = b.sections.len() - 1;
    b.sections[dynamic].size = dynamic_bytes.len();
    let data = b.section(
        ".data",
        SHT_PROGBITS,
        SHF_ALLOC | SHF_WRITE,
        w,
        &filler(0x40, 3),
    );
    let data_end = b.data.len();
    b.sections.push(Section {
        name: ".bss",
        sh_type: SHT_NOBITS,
        flags: SHF_ALLOC | SHF_WRITE,
        offset: data_end,
        size: 0x100,
        link: 0,
        info: 0,
        align: w,
        entsize: 0,
    });
    let bss = b.sections.len() - 1;

    // Not loaded: the symbol table (a local symbol in .note.ABI-tag, as crt1.o gives every
    // program, one in .text, one in .data), its strings, the section names.
    let (strtab_bytes, strtab_at) = string_table(&["__abi_tag", "main", "counter"]);
    let mut symtab_bytes = b.symbol(0, 0, 0, 0, 0);
    let mut locals = 1;
    if let Some((_, _, abi_tag)) = notes {
        let symbol = b.symbol(strtab_at[0], at(&b, abi_tag), 32, 0x01, abi_tag as u16);
        symtab_bytes.extend(symbol);
        locals += 1;
    }
    symtab_bytes.extend(b.symbol(strtab_at[1], at(&b, text), 0x600, 0x12, text as u16));
    symtab_bytes.extend(b.symbol(strtab_at[2], at(&b, data), 8, 0x11, data as u16));
    let symtab = b.section(".symtab", SHT_SYMTAB, 0, w, &symtab_bytes);
    let strtab = b.section(".strtab", SHT_STRTAB, 0, 1, &strtab_bytes);
    let shstrtab = b.sections.len();
    let mut names: Vec<&str> = b.sections.iter().skip(1).map(|s| s.name).collect();
    names.push(".shstrtab");
    let (shstrtab_bytes, name_at) = string_table(&names);
    b.section(".shstrtab", SHT_STRTAB, 0, 1, &shstrtab_bytes);
    for (i, link, info) in [
        (dynsym, dynstr, 1),
        (dynamic, dynstr, 0),
        (symtab, strtab, locals),
    ] {
        b.sections[i].link = link as u32;
        b.sections[i].info = info;
    }
    if let Some(gnu_hash) = gnu_hash {
        b.sections[gnu_hash].link = dynsym as u32;
        b.sections[gnu_hash].entsize = if class.is_64 { 0 } else { 4 };
    }
    b.sections[dynsym].entsize = if class.is_64 { 24 } else { 16 };
    b.sections[symtab].entsize = b.sections[dynsym].entsize;

    // The section header table.
    let shoff = b.align(w);
    let shnum = b.sections.len();
    b.data.resize(shoff + shnum * class.shentsize(), 0);
    b.eh_set(Eh::Shoff, shoff as u64);
    b.eh_set(Eh::Shnum, shnum as u64);
    b.eh_set(Eh::Shstrndx, shstrtab as u64);
    for i in 1..shnum {
        let s = &b.sections[i];
        let fields = [
            (Sh::Name, u64::from(name_at[i - 1])),
            (Sh::Type, s.sh_type.into()),
            (Sh::Flags, s.flags),
            (
                Sh::Addr,
                if s.flags & SHF_ALLOC != 0 {
                    b.address(s.offset)
                } else {
                    0
                },
            ),
            (Sh::Offset, s.offset as u64),
            (Sh::Size, s.size as u64),
            (Sh::Link, s.link.into()),
            (Sh::Info, s.info.into()),
            (Sh::Addralign, s.align as u64),
            (Sh::Entsize, s.entsize as u64),
        ];
        for (field, value) in fields {
            b.sh_set(i, field, value);
        }
    }

    // The ELF header.
    let ident = [
        0x7f,
        b'E',
        b'L',
        b'F',
        if class.is_64 { 2 } else { 1 },
        if class.big_endian { 2 } else { 1 },
        1,
    ];
    b.data[..ident.len()].copy_from_slice(&ident);
    let machine = match (class.is_64, class.big_endian) {
        (true, false) => 62, // EM_X86_64
        (false, false) => 3, // EM_386
        (true, true) => 22,  // EM_S390
        (false, true) => 20, // EM_PPC
    };
    let (ehsize, phentsize, shentsize) = (class.ehsize(), class.phentsize(), class.shentsize());
    b.data[16..18].copy_from_slice(&class.bytes(3, 2)); // ET_DYN
    b.data[18..20].copy_from_slice(&class.bytes(machine, 2));
    b.data[20..24].copy_from_slice(&class.bytes(1, 4)); // EV_CURRENT
    let flags_at = b.class.eh(Eh::Shoff).0 + w;
    b.data[flags_at + 4..flags_at + 6].copy_from_slice(&class.bytes(ehsize as u64, 2));
    b.eh_set(Eh::Entry, at(&b, text));
    b.eh_set(Eh::Phoff, ehsize as u64);
    b.eh_set(Eh::Phentsize, phentsize as u64);
    b.eh_set(Eh::Phnum, phnum as u64);
    b.eh_set(Eh::Shentsize, shentsize as u64);

    // The program headers.
    let range = |b: &Builder, first: usize, last: usize| {
        let start = b.sections[first].offset;
        (
            start,
            b.sections[last].offset + b.sections[last].size - start,
        )
    };
    let (phdr_size, ph) = (phnum * phentsize, ehsize);
    let mut headers: Vec<(u32, u32, (usize, usize), usize)> = vec![
        (PT_PHDR, PF_R, (ph, phdr_size), w),
        (PT_INTERP, PF_R, range(&b, interp, interp), 1),
        (PT_LOAD, PF_R, (0, first_end), PAGE),
        (PT_LOAD, PF_R | PF_X, (PAGE, text_end - PAGE), PAGE),
        (PT_LOAD, PF_R, (2 * PAGE, rodata_end - 2 * PAGE), PAGE),
        (
            PT_LOAD,
            PF_R | PF_W,
            (dynamic_at, data_end - dynamic_at),
            PAGE,
        ),
        (PT_DYNAMIC, PF_R | PF_W, range(&b, dynamic, dynamic), w),
    ];
    if let Some((property, build_id, abi_tag)) = notes {
        if class.is_64 {
            headers.push((PT_NOTE, PF_R, range(&b, property, property), 8));
            headers.push((PT_NOTE, PF_R, range(&b, build_id, abi_tag), 4));
        } else {
            headers.push((PT_NOTE, PF_R, range(&b, property, abi_tag), 4));
        }
        headers.push((PT_GNU_PROPERTY, PF_R, range(&b, property, property), w));
    }
    headers.push((PT_GNU_STACK, PF_R | PF_W, (0, 0), 16));
    assert_eq!(headers.len(), phnum);
    for (i, &(p_type, flags, (offset, filesz), align)) in headers.iter().enumerate() {
        let vaddr = if p_type == PT_GNU_STACK {
            0
        } else {
            b.address(offset)
        };
        let memsz = if p_type == PT_LOAD && flags & PF_W != 0 {
            filesz + b.sections[bss].size
        } else {
            filesz
        };
        for (field, value) in [
            (Ph::Type, p_type.into()),
            (Ph::Flags, flags.into()),
            (Ph::Offset, offset as u64),
            (Ph::Vaddr, vaddr),
            (Ph::Paddr, vaddr),
            (Ph::Filesz, filesz as u64),
            (Ph::Memsz, memsz as u64),
            (Ph::Align, align as u64),
        ] {
            b.ph_set(i, field, value);
        }
    }

    if !options.section_headers {
        // What stripping the section headers leaves: the table and names still in the file,
        // nothing pointing at them.
        for field in [Eh::Shoff, Eh::Shnum, Eh::Shstrndx] {
            b.eh_set(field, 0);
        }
    }
    b.data
}
