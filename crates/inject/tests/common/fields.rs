//! ELF header fields by name, for any class and byte order: where each lies in the file, and
//! reading and writing it. Tests build and damage files through this, so that one case covers
//! ELF32 and ELF64, little and big endian.

/// An ELF class and byte order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Class {
    pub is_64: bool,
    pub big_endian: bool,
}

/// The four kinds of ELF file the injector handles.
pub const CLASSES: [Class; 4] = [
    Class {
        is_64: true,
        big_endian: false,
    },
    Class {
        is_64: false,
        big_endian: false,
    },
    Class {
        is_64: true,
        big_endian: true,
    },
    Class {
        is_64: false,
        big_endian: true,
    },
];

/// Fields of the ELF header that tests read or write.
#[derive(Debug, Clone, Copy)]
pub enum Eh {
    Entry,
    Phoff,
    Shoff,
    Phentsize,
    Phnum,
    Shentsize,
    Shnum,
    Shstrndx,
}

/// Fields of a program header.
#[derive(Debug, Clone, Copy)]
pub enum Ph {
    Type,
    Flags,
    Offset,
    Vaddr,
    Paddr,
    Filesz,
    Memsz,
    Align,
}

/// Fields of a section header.
#[derive(Debug, Clone, Copy)]
pub enum Sh {
    Name,
    Type,
    Flags,
    Addr,
    Offset,
    Size,
    Link,
    Info,
    Addralign,
    Entsize,
}

impl Class {
    pub fn of(data: &[u8]) -> Class {
        Class {
            is_64: data[4] == 2,
            big_endian: data[5] == 2,
        }
    }

    pub fn name(&self) -> &'static str {
        match (self.is_64, self.big_endian) {
            (true, false) => "ELF64 LE",
            (false, false) => "ELF32 LE",
            (true, true) => "ELF64 BE",
            (false, true) => "ELF32 BE",
        }
    }

    pub fn word(&self) -> usize {
        if self.is_64 {
            8
        } else {
            4
        }
    }

    pub fn ehsize(&self) -> usize {
        if self.is_64 {
            64
        } else {
            52
        }
    }

    pub fn phentsize(&self) -> usize {
        if self.is_64 {
            56
        } else {
            32
        }
    }

    pub fn shentsize(&self) -> usize {
        if self.is_64 {
            64
        } else {
            40
        }
    }

    /// Offset and size of an ELF header field.
    pub fn eh(&self, field: Eh) -> (usize, usize) {
        let w = self.word();
        let after_entry = 24 + w; // e_entry ends here
        match field {
            Eh::Entry => (24, w),
            Eh::Phoff => (after_entry, w),
            Eh::Shoff => (after_entry + w, w),
            Eh::Phentsize => (after_entry + 2 * w + 6, 2),
            Eh::Phnum => (after_entry + 2 * w + 8, 2),
            Eh::Shentsize => (after_entry + 2 * w + 10, 2),
            Eh::Shnum => (after_entry + 2 * w + 12, 2),
            Eh::Shstrndx => (after_entry + 2 * w + 14, 2),
        }
    }

    /// Offset within an entry and size of a program header field (ELF64 moves `p_flags` up).
    pub fn ph(&self, field: Ph) -> (usize, usize) {
        if self.is_64 {
            match field {
                Ph::Type => (0, 4),
                Ph::Flags => (4, 4),
                Ph::Offset => (8, 8),
                Ph::Vaddr => (16, 8),
                Ph::Paddr => (24, 8),
                Ph::Filesz => (32, 8),
                Ph::Memsz => (40, 8),
                Ph::Align => (48, 8),
            }
        } else {
            match field {
                Ph::Type => (0, 4),
                Ph::Offset => (4, 4),
                Ph::Vaddr => (8, 4),
                Ph::Paddr => (12, 4),
                Ph::Filesz => (16, 4),
                Ph::Memsz => (20, 4),
                Ph::Flags => (24, 4),
                Ph::Align => (28, 4),
            }
        }
    }

    /// Offset within an entry and size of a section header field.
    pub fn sh(&self, field: Sh) -> (usize, usize) {
        let w = self.word();
        match field {
            Sh::Name => (0, 4),
            Sh::Type => (4, 4),
            Sh::Flags => (8, w),
            Sh::Addr => (8 + w, w),
            Sh::Offset => (8 + 2 * w, w),
            Sh::Size => (8 + 3 * w, w),
            Sh::Link => (8 + 4 * w, 4),
            Sh::Info => (12 + 4 * w, 4),
            Sh::Addralign => (16 + 4 * w, w),
            Sh::Entsize => (16 + 5 * w, w),
        }
    }

    pub fn get(&self, data: &[u8], at: usize, size: usize) -> u64 {
        let bytes = &data[at..at + size];
        let mut value = 0u64;
        for i in 0..size {
            let byte = if self.big_endian {
                bytes[i]
            } else {
                bytes[size - 1 - i]
            };
            value = value << 8 | u64::from(byte);
        }
        value
    }

    pub fn put(&self, data: &mut [u8], at: usize, size: usize, value: u64) {
        assert!(
            size == 8 || value >> (8 * size) == 0,
            "{value:#x} fits in {size} bytes"
        );
        for i in 0..size {
            let byte = (value >> (8 * i)) as u8;
            let at = if self.big_endian {
                at + size - 1 - i
            } else {
                at + i
            };
            data[at] = byte;
        }
    }

    /// The bytes of `value` as a field of `size` bytes.
    pub fn bytes(&self, value: u64, size: usize) -> Vec<u8> {
        let mut out = vec![0; size];
        self.put(&mut out, 0, size, value);
        out
    }
}

/// Reading and writing the header fields of a file.
pub trait Fields {
    fn class(&self) -> Class;
    fn raw(&self) -> &[u8];
    fn raw_mut(&mut self) -> &mut [u8];

    fn eh_get(&self, field: Eh) -> u64 {
        let (at, size) = self.class().eh(field);
        self.class().get(self.raw(), at, size)
    }

    fn eh_set(&mut self, field: Eh, value: u64) {
        let (at, size) = self.class().eh(field);
        let class = self.class();
        class.put(self.raw_mut(), at, size, value);
    }

    /// The file offset of program header `i`.
    fn ph_at(&self, i: usize) -> usize {
        self.eh_get(Eh::Phoff) as usize + i * self.class().phentsize()
    }

    fn phnum(&self) -> usize {
        self.eh_get(Eh::Phnum) as usize
    }

    fn ph_get(&self, i: usize, field: Ph) -> u64 {
        let (at, size) = self.class().ph(field);
        self.class().get(self.raw(), self.ph_at(i) + at, size)
    }

    fn ph_set(&mut self, i: usize, field: Ph, value: u64) {
        let (at, size) = self.class().ph(field);
        let (class, entry) = (self.class(), self.ph_at(i));
        class.put(self.raw_mut(), entry + at, size, value);
    }

    /// The first program header of type `p_type` for which `filter` holds.
    fn ph_find(&self, p_type: u32, filter: impl Fn(usize) -> bool) -> usize {
        (0..self.phnum())
            .find(|&i| self.ph_get(i, Ph::Type) == u64::from(p_type) && filter(i))
            .unwrap_or_else(|| panic!("a program header of type {p_type:#x}"))
    }

    /// The file offset of section header `i`.
    fn sh_at(&self, i: usize) -> usize {
        self.eh_get(Eh::Shoff) as usize + i * self.class().shentsize()
    }

    fn shnum(&self) -> usize {
        self.eh_get(Eh::Shnum) as usize
    }

    fn sh_get(&self, i: usize, field: Sh) -> u64 {
        let (at, size) = self.class().sh(field);
        self.class().get(self.raw(), self.sh_at(i) + at, size)
    }

    fn sh_set(&mut self, i: usize, field: Sh, value: u64) {
        let (at, size) = self.class().sh(field);
        let (class, entry) = (self.class(), self.sh_at(i));
        class.put(self.raw_mut(), entry + at, size, value);
    }

    /// The index of the section named `name`.
    fn sh_find(&self, name: &str) -> usize {
        let strtab = self.eh_get(Eh::Shstrndx) as usize;
        let names = self.sh_get(strtab, Sh::Offset) as usize;
        (0..self.shnum())
            .find(|&i| {
                let start = names + self.sh_get(i, Sh::Name) as usize;
                let len = self.raw()[start..].iter().position(|&b| b == 0).unwrap();
                &self.raw()[start..start + len] == name.as_bytes()
            })
            .unwrap_or_else(|| panic!("a section named {name}"))
    }

    /// The file range of section `name`'s contents.
    fn section_range(&self, name: &str) -> (usize, usize) {
        let i = self.sh_find(name);
        (
            self.sh_get(i, Sh::Offset) as usize,
            self.sh_get(i, Sh::Size) as usize,
        )
    }
}

impl Fields for Vec<u8> {
    fn class(&self) -> Class {
        Class::of(self)
    }

    fn raw(&self) -> &[u8] {
        self
    }

    fn raw_mut(&mut self) -> &mut [u8] {
        self
    }
}
