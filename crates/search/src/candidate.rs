//! Opening one candidate file and checking it the way glibc's `open_verify` does, reporting the
//! system calls that failed on the way.

use std::fs::File;
use std::io::{ErrorKind, Read};
use std::os::unix::fs::MetadataExt;

use ldcache_elf::{Class, Endian, Header, ET_DYN, ET_EXEC};
use serde::Serialize;

pub const ENOENT: i32 = 2;
pub const EACCES: i32 = 13;

/// What the loader does with a candidate path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "result")]
pub enum Opened {
    /// Opened and accepted; `id` is (device, inode), which the loader compares with loaded objects.
    Accepted { id: (u64, u64) },
    /// `open` failed with this errno: a failing lookup.
    Failed { errno: i32 },
    /// Opened, but for another ELF class: skipped silently (`found_other_class`).
    OtherClass,
    /// Opened, but for another machine: skipped silently.
    OtherMachine,
    /// Opened, but the loader stops with an error (not ELF, wrong byte order, too short, ...).
    Fatal { reason: String },
}

/// The class, byte order and machine the loader accepts.
#[derive(Debug, Clone, Copy)]
pub struct Expected {
    pub class: Class,
    pub endian: Endian,
    pub machine: u16,
}

impl Expected {
    pub fn of(header: &Header) -> Expected {
        Expected {
            class: header.class,
            endian: header.endian,
            machine: header.machine,
        }
    }
}

const ELFOSABI_SYSV: u8 = 0;
const ELFOSABI_GNU: u8 = 3;

/// Opens `path` and verifies it like the loader would.
pub fn open(path: &str, expected: Expected) -> Opened {
    if path.is_empty() {
        return Opened::Failed { errno: ENOENT };
    }
    let mut file = match File::open(path) {
        Ok(file) => file,
        Err(error) => {
            return Opened::Failed {
                errno: error.raw_os_error().unwrap_or(ENOENT),
            }
        }
    };
    let mut bytes = Vec::with_capacity(64);
    if let Err(error) = (&mut file).take(64).read_to_end(&mut bytes) {
        let reason = match error.kind() {
            ErrorKind::IsADirectory => "cannot read file data: Is a directory".to_string(),
            _ => format!("cannot read file data: {error}"),
        };
        return Opened::Fatal { reason };
    }
    if bytes.len() < 4 || &bytes[..4] != b"\x7fELF" {
        return Opened::Fatal {
            reason: if bytes.len() < 4 {
                "file too short"
            } else {
                "invalid ELF header"
            }
            .to_string(),
        };
    }
    let header = match ldcache_elf::peek_header(&bytes) {
        Ok(header) => header,
        Err(_) => {
            // The magic is right but the header is not: the class byte decides whether the loader
            // skips the file or stops.
            let class_matches = match expected.class {
                Class::Elf32 => bytes.get(4) == Some(&1),
                Class::Elf64 => bytes.get(4) == Some(&2),
            };
            return if class_matches {
                Opened::Fatal {
                    reason: "file too short".to_string(),
                }
            } else {
                Opened::OtherClass
            };
        }
    };
    if header.class != expected.class {
        return Opened::OtherClass;
    }
    if header.endian != expected.endian {
        return Opened::Fatal {
            reason: "ELF file data encoding does not match".to_string(),
        };
    }
    if header.osabi != ELFOSABI_SYSV && header.osabi != ELFOSABI_GNU {
        return Opened::Fatal {
            reason: "ELF file OS ABI invalid".to_string(),
        };
    }
    if header.machine != expected.machine {
        return Opened::OtherMachine;
    }
    if header.e_type != ET_DYN && header.e_type != ET_EXEC {
        return Opened::Fatal {
            reason: "only ET_DYN and ET_EXEC can be loaded".to_string(),
        };
    }
    match file.metadata() {
        Ok(meta) => Opened::Accepted {
            id: (meta.dev(), meta.ino()),
        },
        Err(error) => Opened::Fatal {
            reason: format!("cannot stat shared object: {error}"),
        },
    }
}

/// `stat` of a directory after a failed open: `Ok(true)` if it is a directory, `Ok(false)` if it
/// exists but is not one, `Err(errno)` if the call failed (a failing lookup).
pub fn stat_dir(path: &str) -> Result<bool, i32> {
    if path.is_empty() {
        return Err(ENOENT);
    }
    match std::fs::metadata(path) {
        Ok(meta) => Ok(meta.is_dir()),
        Err(error) => Err(error.raw_os_error().unwrap_or(ENOENT)),
    }
}
