//! The class- and endian-generic reader.

use object::elf::{self, FileHeader32, FileHeader64};
use object::read::elf::{Dyn, FileHeader, ProgramHeader, SectionHeader};
use object::{Endianness, FileKind};

use crate::notes::{self, Note};
use crate::{Class, Dynamic, ElfInfo, Endian, Error, Header, Linkage, DF_1_PIE};

/// Reads the loader-relevant facts of the ELF file in `data`.
pub fn parse(data: &[u8]) -> Result<ElfInfo, Error> {
    match FileKind::parse(data) {
        Ok(FileKind::Elf32) => parse_as::<FileHeader32<Endianness>>(data),
        Ok(FileKind::Elf64) => parse_as::<FileHeader64<Endianness>>(data),
        _ => Err(Error::new("not an ELF file")),
    }
}

/// Reads only the ELF header: what the loader checks on a candidate before accepting it.
pub fn peek_header(data: &[u8]) -> Result<Header, Error> {
    match FileKind::parse(data) {
        Ok(FileKind::Elf32) => header_of(FileHeader32::<Endianness>::parse(data)?),
        Ok(FileKind::Elf64) => header_of(FileHeader64::<Endianness>::parse(data)?),
        _ => Err(Error::new("not an ELF file")),
    }
}

fn header_of<Elf: FileHeader<Endian = Endianness>>(header: &Elf) -> Result<Header, Error> {
    let endian = header.endian()?;
    Ok(Header {
        class: if header.is_class_64() {
            Class::Elf64
        } else {
            Class::Elf32
        },
        endian: endian_of(endian),
        e_type: header.e_type(endian).0,
        machine: header.e_machine(endian).0,
        osabi: header.e_ident().os_abi.0,
    })
}

fn parse_as<Elf: FileHeader<Endian = Endianness>>(data: &[u8]) -> Result<ElfInfo, Error> {
    let file = Elf::parse(data)?;
    let header = header_of(file)?;
    let endian = file.endian()?;
    let segments = file.program_headers(endian, data)?;
    let dynamic_vaddr = segments
        .iter()
        .find(|segment| segment.p_type(endian) == elf::PT_DYNAMIC)
        .map(|segment| segment.p_vaddr(endian).into());
    // A debug file's segments point at bytes that are not there; read nothing through them.
    if dynamic_vaddr.is_some_and(|vaddr| is_separate_debug(file, endian, data, vaddr)) {
        return Ok(ElfInfo {
            header,
            linkage: Linkage::SeparateDebug,
            interpreter: None,
            dynamic: Dynamic::default(),
            notes: Vec::new(),
        });
    }

    let mut interpreter = None;
    let mut dynamic_segment = None;
    let mut notes = Vec::new();
    for segment in segments {
        let p_type = segment.p_type(endian);
        if p_type == elf::PT_INTERP {
            let bytes = segment
                .interpreter(endian, data)?
                .ok_or_else(|| Error::new("PT_INTERP vanished"))?;
            interpreter = Some(utf8(bytes, "PT_INTERP")?);
        } else if p_type == elf::PT_DYNAMIC {
            dynamic_segment = Some(segment);
        } else if p_type == elf::PT_NOTE {
            let bytes = segment
                .data(endian, data)
                .map_err(|()| Error::new("PT_NOTE segment lies outside the file"))?;
            notes.extend(
                notes::notes_in(
                    bytes,
                    segment.p_offset(endian).into(),
                    segment.p_align(endian).into(),
                    endian_of(endian),
                )
                .map(Note::from),
            );
        }
    }

    add_section_notes(file, endian, data, &mut notes);

    let (linkage, dynamic) = if header.e_type == elf::ET_REL.0 {
        (Linkage::Relocatable, Dynamic::default())
    } else if let Some(segment) = dynamic_segment {
        let dynamic = read_dynamic::<Elf>(endian, data, segments, segment)?;
        let static_pie =
            interpreter.is_none() && dynamic.needed.is_empty() && dynamic.flags_1 & DF_1_PIE != 0;
        let linkage = if static_pie {
            Linkage::StaticPie
        } else {
            Linkage::Dynamic
        };
        (linkage, dynamic)
    } else {
        (Linkage::Static, Dynamic::default())
    };

    Ok(ElfInfo {
        header,
        linkage,
        interpreter,
        dynamic,
        notes,
    })
}

/// Notes of `SHT_NOTE` sections that the `PT_NOTE` walks did not reach, each walked with its own
/// alignment: some linkers (mold) put 4-byte-aligned notes in an 8-byte-aligned segment, where a
/// segment walk stops early. Section headers are optional; unreadable ones add nothing.
fn add_section_notes<Elf: FileHeader<Endian = Endianness>>(
    file: &Elf,
    endian: Endianness,
    data: &[u8],
    notes: &mut Vec<crate::Note>,
) {
    let Ok(sections) = file.section_headers(endian, data) else {
        return;
    };
    for section in sections
        .iter()
        .filter(|s| s.sh_type(endian) == elf::SHT_NOTE)
    {
        let Ok(bytes) = section.data(endian, data) else {
            continue;
        };
        let offset: u64 = section.sh_offset(endian).into();
        for note in notes::notes_in(
            bytes,
            offset,
            section.sh_addralign(endian).into(),
            endian_of(endian),
        )
        .map(Note::from)
        {
            if !notes.iter().any(|known| known.offset == note.offset) {
                notes.push(note);
            }
        }
    }
    notes.sort_by_key(|note| note.offset);
}

/// A separate debug file keeps the program headers but turns allocated sections into `SHT_NOBITS`,
/// so `PT_DYNAMIC` points at bytes that are not a dynamic section. Unreadable section headers are
/// taken as "not a debug file": they are optional for everything else.
fn is_separate_debug<Elf: FileHeader<Endian = Endianness>>(
    file: &Elf,
    endian: Endianness,
    data: &[u8],
    dynamic_vaddr: u64,
) -> bool {
    let Ok(sections) = file.section_headers(endian, data) else {
        return false;
    };
    sections.iter().any(|section| {
        section.sh_type(endian) == elf::SHT_NOBITS
            && section.sh_addr(endian).into() == dynamic_vaddr
            && section.sh_size(endian).into() > 0
    })
}

fn read_dynamic<Elf: FileHeader<Endian = Endianness>>(
    endian: Endianness,
    data: &[u8],
    segments: &[Elf::ProgramHeader],
    dynamic_segment: &Elf::ProgramHeader,
) -> Result<Dynamic, Error> {
    let entries = dynamic_segment
        .dynamic(endian, data)?
        .ok_or_else(|| Error::new("PT_DYNAMIC vanished"))?;

    let mut strtab = None;
    let mut strsz = None;
    let mut needed = Vec::new();
    let (mut soname, mut runpath, mut rpath) = (None, None, None);
    let mut flags_1 = 0;
    for entry in entries {
        let tag = entry.d_tag(endian);
        let value: u64 = entry.d_val(endian).into();
        match tag {
            elf::DT_NULL => break,
            elf::DT_STRTAB => strtab = Some(value),
            elf::DT_STRSZ => strsz = Some(value),
            elf::DT_NEEDED => needed.push(value),
            elf::DT_SONAME => soname = Some(value),
            elf::DT_RUNPATH => runpath = Some(value),
            elf::DT_RPATH => rpath = Some(value),
            elf::DT_FLAGS_1 => flags_1 = value,
            _ => {}
        }
    }

    let uses_strings =
        !needed.is_empty() || soname.is_some() || runpath.is_some() || rpath.is_some();
    if !uses_strings {
        return Ok(Dynamic {
            flags_1,
            ..Dynamic::default()
        });
    }
    let address =
        strtab.ok_or_else(|| Error::new("dynamic section has strings but no DT_STRTAB"))?;
    let size = strsz.ok_or_else(|| Error::new("dynamic section has strings but no DT_STRSZ"))?;
    let table = bytes_at_address::<Elf>(endian, data, segments, address, size)?;
    let string = |offset: u64, what: &str| -> Result<String, Error> {
        let tail = usize::try_from(offset)
            .ok()
            .and_then(|offset| table.get(offset..))
            .ok_or_else(|| Error::new(format!("{what} string offset {offset} is past DT_STRSZ")))?;
        let end = tail
            .iter()
            .position(|&b| b == 0)
            .ok_or_else(|| Error::new(format!("{what} string is not NUL-terminated")))?;
        utf8(&tail[..end], what)
    };

    Ok(Dynamic {
        needed: needed
            .into_iter()
            .map(|offset| string(offset, "DT_NEEDED"))
            .collect::<Result<_, _>>()?,
        soname: soname.map(|o| string(o, "DT_SONAME")).transpose()?,
        runpath: runpath.map(|o| string(o, "DT_RUNPATH")).transpose()?,
        rpath: rpath.map(|o| string(o, "DT_RPATH")).transpose()?,
        flags_1,
    })
}

/// The file bytes that a `PT_LOAD` segment maps at `[address, address + size)`.
fn bytes_at_address<'data, Elf: FileHeader<Endian = Endianness>>(
    endian: Endianness,
    data: &'data [u8],
    segments: &[Elf::ProgramHeader],
    address: u64,
    size: u64,
) -> Result<&'data [u8], Error> {
    for segment in segments {
        if segment.p_type(endian) != elf::PT_LOAD {
            continue;
        }
        if let Some(bytes) = segment
            .data_range(endian, data, address, size)
            .map_err(|()| Error::new("PT_LOAD segment lies outside the file"))?
        {
            return Ok(bytes);
        }
    }
    Err(Error::new(format!(
        "DT_STRTAB {address:#x}+{size:#x} is not inside any loaded segment's file bytes"
    )))
}

fn utf8(bytes: &[u8], what: &str) -> Result<String, Error> {
    String::from_utf8(bytes.to_vec()).map_err(|_| Error::new(format!("{what} is not valid UTF-8")))
}

/// Reads a 4-byte field in the file's byte order.
fn endian_of(endian: Endianness) -> Endian {
    match endian {
        Endianness::Little => Endian::Little,
        Endianness::Big => Endian::Big,
    }
}
