//! The headers of an ELF executable or shared object as plain numbers, for a program that edits
//! them: read with `object` for any class and byte order, checked to describe the file
//! consistently (every range inside it, a name table names can be appended to), and encoded back
//! through `object`'s header types. The injector edits through this model, and its oracle reads
//! both files through it: both need every field as written, not an interpretation of it.

use object::elf::{self, FileHeader32, FileHeader64};
use object::read::elf::{FileHeader, ProgramHeader, SectionHeader};
use object::{Endianness, FileKind};

use crate::Error;

// The ELF constants the injector uses, as plain numbers (the headers are read into numbers),
// with their values from `object::elf`.
pub const PT_NULL: u32 = elf::PT_NULL.0;
pub const PT_LOAD: u32 = elf::PT_LOAD.0;
pub const PT_DYNAMIC: u32 = elf::PT_DYNAMIC.0;
pub const PT_INTERP: u32 = elf::PT_INTERP.0;
pub const PT_NOTE: u32 = elf::PT_NOTE.0;
pub const PT_PHDR: u32 = elf::PT_PHDR.0;
pub const PT_GNU_PROPERTY: u32 = elf::PT_GNU_PROPERTY.0;
pub const PF_W: u32 = elf::PF_W.0;
pub const PF_X: u32 = elf::PF_X.0;
pub const PF_R: u32 = elf::PF_R.0;
pub const SHT_NOTE: u32 = elf::SHT_NOTE.0;
pub const SHT_NOBITS: u32 = elf::SHT_NOBITS.0;
pub const SHT_PROGBITS: u32 = elf::SHT_PROGBITS.0;
pub const SHT_SYMTAB: u32 = elf::SHT_SYMTAB.0;
pub const SHT_STRTAB: u32 = elf::SHT_STRTAB.0;
pub const SHT_DYNSYM: u32 = elf::SHT_DYNSYM.0;
pub const SHF_ALLOC: u64 = elf::SHF_ALLOC.0;
pub const ET_EXEC: u16 = elf::ET_EXEC.0;
pub const ET_DYN: u16 = elf::ET_DYN.0;

/// The name field of this project's (and patchelf's) notes: the owner and its NUL.
pub const NIXOS_NAME: &[u8] = b"NixOS\0";

/// One program header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    pub p_type: u32,
    pub flags: u32,
    pub offset: u64,
    pub vaddr: u64,
    pub paddr: u64,
    pub filesz: u64,
    pub memsz: u64,
    pub align: u64,
}

impl Segment {
    pub fn file_end(&self) -> u64 {
        self.offset + self.filesz
    }

    pub fn contains_file_range(&self, offset: u64, size: u64) -> bool {
        offset >= self.offset && offset + size <= self.file_end()
    }
}

/// One section header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Section {
    pub name: u32,
    pub sh_type: u32,
    pub flags: u64,
    pub addr: u64,
    pub offset: u64,
    pub size: u64,
    pub link: u32,
    pub info: u32,
    pub addralign: u64,
    pub entsize: u64,
}

impl Section {
    /// The file bytes the section occupies (none for `SHT_NOBITS`).
    pub fn file_size(&self) -> u64 {
        if self.sh_type == SHT_NOBITS {
            0
        } else {
            self.size
        }
    }
}

/// The parts of an ELF file the injector reads and rewrites.
#[derive(Debug, Clone)]
pub struct Image {
    pub is_64: bool,
    pub big_endian: bool,
    pub e_type: u16,
    pub phoff: u64,
    pub shoff: u64,
    pub phentsize: u64,
    pub shentsize: u64,
    pub shstrndx: usize,
    pub segments: Vec<Segment>,
    pub sections: Vec<Section>,
}

impl Image {
    pub fn parse(data: &[u8]) -> Result<Image, Error> {
        match FileKind::parse(data) {
            Ok(FileKind::Elf32) => Self::parse_as::<FileHeader32<Endianness>>(data),
            Ok(FileKind::Elf64) => Self::parse_as::<FileHeader64<Endianness>>(data),
            _ => Err(Error::new("not an ELF file")),
        }
    }

    fn parse_as<Elf: FileHeader<Endian = Endianness>>(data: &[u8]) -> Result<Image, Error> {
        let invalid = |e: object::read::Error| Error::new(format!("malformed ELF: {e}"));
        let header = Elf::parse(data).map_err(invalid)?;
        let endian = header.endian().map_err(invalid)?;
        // Extended numbering (more than 0xfff0 sections, or PN_XNUM program headers) is not handled.
        let phnum = header.e_phnum(endian);
        if phnum == 0xffff || (header.e_shnum(endian) == 0 && header.e_shoff(endian).into() != 0) {
            return Err(Error::new("extended section or segment numbering"));
        }
        let segments = header
            .program_headers(endian, data)
            .map_err(invalid)?
            .iter()
            .map(|p| Segment {
                p_type: p.p_type(endian).0,
                flags: p.p_flags(endian).0,
                offset: p.p_offset(endian).into(),
                vaddr: p.p_vaddr(endian).into(),
                paddr: p.p_paddr(endian).into(),
                filesz: p.p_filesz(endian).into(),
                memsz: p.p_memsz(endian).into(),
                align: p.p_align(endian).into(),
            })
            .collect();
        let sections: Vec<Section> = header
            .section_headers(endian, data)
            .map_err(invalid)?
            .iter()
            .map(|s| Section {
                name: s.sh_name(endian),
                sh_type: s.sh_type(endian).0,
                flags: s.sh_flags(endian).0,
                addr: s.sh_addr(endian).into(),
                offset: s.sh_offset(endian).into(),
                size: s.sh_size(endian).into(),
                link: s.sh_link(endian),
                info: s.sh_info(endian),
                addralign: s.sh_addralign(endian).into(),
                entsize: s.sh_entsize(endian).into(),
            })
            .collect();
        let shstrndx = usize::from(header.e_shstrndx(endian).0);
        if !sections.is_empty() && shstrndx >= sections.len() {
            return Err(Error::new("section name table index out of range"));
        }
        let image = Image {
            is_64: header.is_class_64(),
            big_endian: endian == Endianness::Big,
            e_type: header.e_type(endian).0,
            phoff: header.e_phoff(endian).into(),
            shoff: header.e_shoff(endian).into(),
            phentsize: u64::from(header.e_phentsize(endian)),
            shentsize: u64::from(header.e_shentsize(endian)),
            shstrndx,
            segments,
            sections,
        };
        let (phentsize, shentsize) = if image.is_64 { (56, 64) } else { (32, 40) };
        if image.phentsize != phentsize
            || (image.shentsize != shentsize && !image.sections.is_empty())
        {
            return Err(Error::new("unusual program or section header size"));
        }
        if !image.segments.iter().any(|s| s.p_type == PT_LOAD) {
            return Err(Error::new("no load segment"));
        }
        image.check_sizes(data.len() as u64)?;
        // Names are offsets into a string table that starts with an empty string; anything else
        // would make every name ambiguous once the table grows.
        if let Some(names) = image.sections.get(image.shstrndx).filter(|_| shstrndx != 0) {
            let starts_empty = data.get(names.offset as usize) == Some(&0);
            // And ends with a terminated string, so no name runs into appended ones.
            let ends_terminated =
                data.get((names.offset + names.size).wrapping_sub(1) as usize) == Some(&0);
            let names_inside = image
                .sections
                .iter()
                .all(|s| u64::from(s.name) < names.size);
            if names.sh_type != SHT_STRTAB
                || names.size == 0
                || !starts_empty
                || !ends_terminated
                || !names_inside
            {
                return Err(Error::new("malformed section name table"));
            }
        } else if !image.sections.is_empty() {
            return Err(Error::new("sections without a section name table"));
        }
        Ok(image)
    }

    /// Every range the headers describe lies inside the file, without overflow.
    fn check_sizes(&self, len: u64) -> Result<(), Error> {
        let fits = |offset: u64, size: u64| offset.checked_add(size).is_some_and(|end| end <= len);
        let address_space = if self.is_64 { u64::MAX } else { 1 << 32 };
        for s in &self.segments {
            if s.vaddr.saturating_add(s.memsz) > address_space {
                return Err(Error::new("a segment reaches past the address space"));
            }
            if !fits(s.offset, s.filesz)
                || s.vaddr.checked_add(s.memsz).is_none()
                || s.filesz > s.memsz && s.p_type == PT_LOAD
            {
                return Err(Error::new("a segment lies outside the file"));
            }
        }
        let table = self.phoff..self.phoff + self.phdr_table_size();
        for s in &self.sections {
            if !fits(s.offset, s.file_size()) {
                return Err(Error::new("a section lies outside the file"));
            }
            let overlaps =
                |r: std::ops::Range<u64>| s.offset < r.end && s.offset + s.file_size() > r.start;
            if s.file_size() > 0 && (overlaps(0..self.ehsize()) || overlaps(table.clone())) {
                return Err(Error::new("a section overlaps the ELF or program headers"));
            }
        }
        Ok(())
    }

    /// The name of section `index`, from the section name table.
    pub fn section_name<'d>(&self, data: &'d [u8], index: usize) -> &'d [u8] {
        let (Some(table), Some(section)) =
            (self.sections.get(self.shstrndx), self.sections.get(index))
        else {
            return b"";
        };
        let start = (table.offset + u64::from(section.name)) as usize;
        let end = (table.offset + table.size) as usize;
        let bytes = data.get(start..end.min(data.len())).unwrap_or_default();
        let len = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
        &bytes[..len]
    }

    pub fn ehsize(&self) -> u64 {
        if self.is_64 {
            64
        } else {
            52
        }
    }

    /// Whether a load segment maps `segment`'s file bytes at its address.
    pub fn maps(&self, segment: &Segment) -> bool {
        self.segments.iter().any(|l| {
            l.p_type == PT_LOAD
                && l.contains_file_range(segment.offset, segment.filesz)
                && segment.vaddr == l.vaddr + (segment.offset - l.offset)
        })
    }

    /// The page size the loader may map with: the largest `p_align` of the load segments, at
    /// least 4 KiB and at most 64 KiB (what the file itself promises to tolerate).
    pub fn page_size(&self) -> u64 {
        let largest = self
            .segments
            .iter()
            .filter(|s| s.p_type == PT_LOAD)
            .map(|s| s.align)
            .max()
            .unwrap_or(0);
        largest.clamp(4096, 65536).next_power_of_two()
    }

    /// Whether `segment` (a `PT_GNU_PROPERTY`) holds what glibc takes for the program property
    /// note: at its address (read through the load segment that maps it), aligned to the word
    /// size, a note of type `NT_GNU_PROPERTY_TYPE_0` named `GNU`. Without one the loader ignores
    /// the segment (`_dl_process_pt_gnu_property`).
    pub fn holds_property_note(&self, data: &[u8], segment: &Segment) -> bool {
        let nt_gnu_property_type_0 = u64::from(elf::NT_GNU_PROPERTY_TYPE_0.0);
        if segment.align != self.word() {
            return false;
        }
        let Some(start) = self.segments.iter().find_map(|l| {
            let inside = l.p_type == PT_LOAD
                && segment.vaddr >= l.vaddr
                && segment.vaddr - l.vaddr < l.filesz;
            inside.then(|| l.offset + (segment.vaddr - l.vaddr))
        }) else {
            return false;
        };
        let end = start.saturating_add(segment.memsz).min(data.len() as u64);
        let word = |at: u64| self.get(&data[at as usize..at as usize + 4]);
        let mut at = start;
        while at + 12 <= end {
            let (namesz, descsz, n_type) = (word(at), word(at + 4), word(at + 8));
            if namesz == 4
                && n_type == nt_gnu_property_type_0
                && data.get((at + 12) as usize..(at + 16) as usize) == Some(b"GNU\0")
            {
                return true;
            }
            let name_end = (at + 12).saturating_add(namesz.next_multiple_of(4));
            at = name_end
                .saturating_add(descsz)
                .next_multiple_of(self.word());
        }
        false
    }

    /// The file offsets where what the dynamic section points at begins: string and symbol
    /// tables, hash tables, relocations, version tables, init and fini arrays. In a file without
    /// section headers these (and the segments) are all that says which bytes the loader reads.
    pub fn dynamic_tables(&self, data: &[u8]) -> Vec<u64> {
        use object::elf::{
            DT_ADDRRNGHI, DT_ADDRRNGLO, DT_FINI, DT_FINI_ARRAY, DT_HASH, DT_INIT, DT_INIT_ARRAY,
            DT_JMPREL, DT_PLTGOT, DT_PREINIT_ARRAY, DT_REL, DT_RELA, DT_RELR, DT_STRTAB, DT_SYMTAB,
            DT_SYMTAB_SHNDX, DT_VERDEF, DT_VERNEED, DT_VERSYM,
        };
        let is_address = |tag: i64| {
            [
                DT_PLTGOT,
                DT_HASH,
                DT_STRTAB,
                DT_SYMTAB,
                DT_RELA,
                DT_INIT,
                DT_FINI,
                DT_REL,
                DT_JMPREL,
                DT_INIT_ARRAY,
                DT_FINI_ARRAY,
                DT_PREINIT_ARRAY,
                DT_SYMTAB_SHNDX,
                DT_RELR,
                DT_VERSYM,
                DT_VERDEF,
                DT_VERNEED,
            ]
            .iter()
            .any(|t| t.0 == tag)
                || (DT_ADDRRNGLO..=DT_ADDRRNGHI).contains(&tag)
        };
        let word = self.word() as usize;
        let entries = self
            .segments
            .iter()
            .filter(|s| s.p_type == PT_DYNAMIC)
            .filter_map(|s| data.get(s.offset as usize..s.file_end() as usize))
            .flat_map(|bytes| bytes.chunks_exact(2 * word))
            .map(|entry| (self.get(&entry[..word]), self.get(&entry[word..])));
        entries
            .take_while(|&(tag, _)| tag != 0)
            .filter(|&(tag, _)| is_address(self.signed(tag)))
            .filter_map(|(_, address)| self.offset_of(address))
            .collect()
    }

    /// A dynamic tag read as a word: sign-extended in ELF32.
    fn signed(&self, word: u64) -> i64 {
        if self.is_64 {
            word as i64
        } else {
            i64::from(word as u32 as i32)
        }
    }

    /// The file offset a load segment maps at `address`.
    pub fn offset_of(&self, address: u64) -> Option<u64> {
        self.segments.iter().find_map(|l| {
            let inside = l.p_type == PT_LOAD && address >= l.vaddr && address - l.vaddr < l.filesz;
            inside.then(|| l.offset + (address - l.vaddr))
        })
    }

    /// Whether, in a file without section headers, something may begin in `start..end`: a
    /// table the dynamic section points at, or a segment other than a load segment or the
    /// program header table's.
    pub fn anything_starts_in(&self, data: &[u8], start: u64, end: u64) -> bool {
        let segments = self
            .segments
            .iter()
            .filter(|s| !matches!(s.p_type, PT_LOAD | PT_PHDR) && s.filesz > 0)
            .map(|s| s.offset);
        let mut starts = self.dynamic_tables(data).into_iter().chain(segments);
        starts.any(|at| (start..end).contains(&at))
    }

    /// The notes of the file bytes `range`, walked with 4-byte padding: the padding of the
    /// notes this injector writes and moves (one walker for the reader, the injector and the
    /// oracle: [`crate::notes_in`]).
    pub fn notes<'d>(&self, data: &'d [u8], range: std::ops::Range<u64>) -> crate::NoteWalk<'d> {
        let endian = if self.big_endian {
            crate::Endian::Big
        } else {
            crate::Endian::Little
        };
        let bytes = data
            .get(range.start as usize..range.end as usize)
            .unwrap_or(&[]);
        crate::notes_in(bytes, range.start, 4, endian)
    }

    pub fn phdr_table_size(&self) -> u64 {
        self.phentsize * self.segments.len() as u64
    }

    pub fn word(&self) -> u64 {
        if self.is_64 {
            8
        } else {
            4
        }
    }

    /// Encodes a value of `size` bytes in the file's byte order.
    pub fn put(&self, out: &mut Vec<u8>, value: u64, size: usize) {
        let bytes = value.to_be_bytes();
        let field = &bytes[8 - size..];
        if self.big_endian {
            out.extend_from_slice(field);
        } else {
            out.extend(field.iter().rev());
        }
    }

    pub fn get(&self, bytes: &[u8]) -> u64 {
        let mut value = 0u64;
        if self.big_endian {
            for &b in bytes {
                value = value << 8 | u64::from(b);
            }
        } else {
            for &b in bytes.iter().rev() {
                value = value << 8 | u64::from(b);
            }
        }
        value
    }

    fn endianness(&self) -> Endianness {
        if self.big_endian {
            Endianness::Big
        } else {
            Endianness::Little
        }
    }

    /// A program header as the file stores it (`object`'s header types give the layout).
    pub fn encode_segment(&self, s: &Segment) -> Vec<u8> {
        use object::{U32, U64};
        let e = self.endianness();
        if self.is_64 {
            let header = elf::ProgramHeader64::<Endianness> {
                p_type: U32::new(e, elf::ProgramType(s.p_type)),
                p_flags: U32::new(e, elf::ProgramFlags(s.flags)),
                p_offset: U64::new(e, s.offset),
                p_vaddr: U64::new(e, s.vaddr),
                p_paddr: U64::new(e, s.paddr),
                p_filesz: U64::new(e, s.filesz),
                p_memsz: U64::new(e, s.memsz),
                p_align: U64::new(e, s.align),
            };
            object::bytes_of(&header).to_vec()
        } else {
            let word = |value: u64| U32::new(e, value as u32);
            let header = elf::ProgramHeader32::<Endianness> {
                p_type: U32::new(e, elf::ProgramType(s.p_type)),
                p_offset: word(s.offset),
                p_vaddr: word(s.vaddr),
                p_paddr: word(s.paddr),
                p_filesz: word(s.filesz),
                p_memsz: word(s.memsz),
                p_flags: U32::new(e, elf::ProgramFlags(s.flags)),
                p_align: word(s.align),
            };
            object::bytes_of(&header).to_vec()
        }
    }

    /// A section header as the file stores it.
    pub fn encode_section(&self, s: &Section) -> Vec<u8> {
        use object::{U32, U64};
        let e = self.endianness();
        if self.is_64 {
            let header = elf::SectionHeader64::<Endianness> {
                sh_name: U32::new(e, s.name),
                sh_type: U32::new(e, elf::SectionType(s.sh_type)),
                sh_flags: U64::new(e, elf::SectionFlags(s.flags)),
                sh_addr: U64::new(e, s.addr),
                sh_offset: U64::new(e, s.offset),
                sh_size: U64::new(e, s.size),
                sh_link: U32::new(e, s.link),
                sh_info: U32::new(e, s.info),
                sh_addralign: U64::new(e, s.addralign),
                sh_entsize: U64::new(e, s.entsize),
            };
            object::bytes_of(&header).to_vec()
        } else {
            let word = |value: u64| U32::new(e, value as u32);
            let header = elf::SectionHeader32::<Endianness> {
                sh_name: U32::new(e, s.name),
                sh_type: U32::new(e, elf::SectionType(s.sh_type)),
                sh_flags: U32::new_u64_truncate(e, elf::SectionFlags(s.flags)),
                sh_addr: word(s.addr),
                sh_offset: word(s.offset),
                sh_size: word(s.size),
                sh_link: U32::new(e, s.link),
                sh_info: U32::new(e, s.info),
                sh_addralign: word(s.addralign),
                sh_entsize: word(s.entsize),
            };
            object::bytes_of(&header).to_vec()
        }
    }

    /// Offset and size of a field of the ELF header (the offset from `object`'s header types).
    pub fn header_field(&self, field: HeaderField) -> (u64, usize) {
        use std::mem::offset_of;
        type H64 = FileHeader64<Endianness>;
        type H32 = FileHeader32<Endianness>;
        let word = self.word() as usize;
        let (offset, size) = match (field, self.is_64) {
            (HeaderField::Phoff, true) => (offset_of!(H64, e_phoff), word),
            (HeaderField::Phoff, false) => (offset_of!(H32, e_phoff), word),
            (HeaderField::Shoff, true) => (offset_of!(H64, e_shoff), word),
            (HeaderField::Shoff, false) => (offset_of!(H32, e_shoff), word),
            (HeaderField::Phnum, true) => (offset_of!(H64, e_phnum), 2),
            (HeaderField::Phnum, false) => (offset_of!(H32, e_phnum), 2),
            (HeaderField::Shnum, true) => (offset_of!(H64, e_shnum), 2),
            (HeaderField::Shnum, false) => (offset_of!(H32, e_shnum), 2),
        };
        (offset as u64, size)
    }
}

#[derive(Debug, Clone, Copy)]
pub enum HeaderField {
    Phoff,
    Shoff,
    Phnum,
    Shnum,
}
