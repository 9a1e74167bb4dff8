//! Dynamic-linking facts of an ELF file, read from its program headers.
//!
//! This crate answers one question: what does glibc's loader need to know about an ELF file to resolve its
//! dependencies? The class, byte order and machine (to reject wrong-class candidates), the interpreter, the
//! dynamic section's `DT_NEEDED`, `DT_RUNPATH`, `DT_RPATH`, `DT_SONAME` and `DT_FLAGS_1`, and the notes the
//! loader or this project cares about. Everything is read through the program headers, exactly as the loader
//! sees the file; section headers are consulted only to recognise separate debug files.
//!
//! It is not a general ELF library and never writes: see `object` for that.

#![forbid(unsafe_code)]

mod dlopen;
mod error;
pub mod image;
mod notes;
mod read;

pub use dlopen::DlopenEntry;
pub use error::Error;
pub use notes::{
    notes_in, Note, NoteRef, NoteWalk, NOTE_OWNER_FDO, NOTE_OWNER_NIXOS, NT_FDO_DLOPEN,
    NT_NIXOS_LDCACHE,
};
pub use read::{parse, peek_header};

use serde::Serialize;

/// The ELF class: the width of addresses and of header fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Class {
    Elf32,
    Elf64,
}

/// The byte order of every multi-byte field in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Endian {
    Little,
    Big,
}

/// How the file takes part in dynamic linking.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Linkage {
    /// `ET_REL`: an object file for the link editor, never loaded.
    Relocatable,
    /// No `PT_DYNAMIC`: a statically linked program (or a core file, firmware, ...).
    Static,
    /// `PT_DYNAMIC` but no interpreter and flagged `DF_1_PIE`: relocates itself, loads nothing.
    StaticPie,
    /// A separate debug file (`objcopy --only-keep-debug`): the dynamic section is `SHT_NOBITS`.
    SeparateDebug,
    /// An executable or shared object the dynamic loader processes.
    Dynamic,
}

/// The identity of an ELF file as the loader checks it before accepting a candidate library
/// (`open_verify` in glibc): class, byte order and machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub struct Header {
    pub class: Class,
    pub endian: Endian,
    /// `e_type`: 1 relocatable, 2 executable, 3 shared object, 4 core.
    pub e_type: u16,
    /// `e_machine`, e.g. 62 for x86-64.
    pub machine: u16,
    /// `e_ident[EI_OSABI]`.
    pub osabi: u8,
}

/// The contents of the dynamic section that matter for library resolution.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Dynamic {
    /// `DT_NEEDED` entries, in file order.
    pub needed: Vec<String>,
    /// `DT_SONAME`.
    pub soname: Option<String>,
    /// `DT_RUNPATH`, exactly as stored.
    pub runpath: Option<String>,
    /// `DT_RPATH`, exactly as stored (the loader ignores it when `DT_RUNPATH` is present).
    pub rpath: Option<String>,
    /// `DT_FLAGS_1` (0 when absent).
    pub flags_1: u64,
}

/// `DT_FLAGS_1` bit: do not search the default directories or use ld.so.cache for this object's needs.
pub const DF_1_NODEFLIB: u64 = object::elf::DF_1_NODEFLIB.0;
/// `DT_FLAGS_1` bit: the object is a position-independent executable.
pub const DF_1_PIE: u64 = object::elf::DF_1_PIE.0;
/// `e_type` of an executable.
pub const ET_EXEC: u16 = object::elf::ET_EXEC.0;
/// `e_type` of a shared object or position-independent executable.
pub const ET_DYN: u16 = object::elf::ET_DYN.0;

/// Everything this project reads from one ELF file.
#[derive(Debug, Clone, Serialize)]
pub struct ElfInfo {
    #[serde(flatten)]
    pub header: Header,
    pub linkage: Linkage,
    /// `PT_INTERP`, without its terminating NUL.
    pub interpreter: Option<String>,
    /// The dynamic section; empty unless `linkage` is `Dynamic` or `StaticPie`.
    pub dynamic: Dynamic,
    /// Every note in every `PT_NOTE` segment (and in `SHT_NOTE` sections the segment walks did not
    /// reach), in file order.
    #[serde(skip)]
    pub notes: Vec<Note>,
}

impl ElfInfo {
    /// The search path glibc uses for this object's own dependencies, with the tag it came from:
    /// `DT_RUNPATH` when present, else `DT_RPATH`.
    pub fn search_path(&self) -> Option<(&'static str, &str)> {
        match (&self.dynamic.runpath, &self.dynamic.rpath) {
            (Some(runpath), _) => Some(("DT_RUNPATH", runpath)),
            (None, Some(rpath)) => Some(("DT_RPATH", rpath)),
            (None, None) => None,
        }
    }

    /// Notes with the given owner and type.
    pub fn notes_of<'a>(&'a self, owner: &'a [u8], n_type: u32) -> impl Iterator<Item = &'a Note> {
        self.notes
            .iter()
            .filter(move |note| note.owner == owner && note.n_type == n_type)
    }

    /// Libraries the object declares it may `dlopen`, from FDO `.note.dlopen` notes.
    ///
    /// Errors when such a note holds malformed JSON.
    pub fn dlopen_entries(&self) -> Result<Vec<DlopenEntry>, Error> {
        let mut entries = Vec::new();
        for note in self.notes_of(NOTE_OWNER_FDO, NT_FDO_DLOPEN) {
            entries.extend(dlopen::parse(&note.desc)?);
        }
        Ok(entries)
    }
}
