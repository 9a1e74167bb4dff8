//! A file's bytes, mapped rather than read: a command reads the few pages it looks at, whatever
//! the size of the file. Guarded (see `sigbus`): a truncation by another process reads as zeros.

use std::fs::File;
use std::io;
use std::ops::Deref;

use memmap2::Mmap;

use crate::sigbus;

pub struct Mapped {
    // Dropped first: the range is unguarded before it is unmapped.
    _guard: sigbus::Guard,
    map: Mmap,
}

impl Mapped {
    pub fn of(file: &File) -> io::Result<Mapped> {
        // SAFETY: this process never writes the file; another one truncating it reads as zeros
        // (the guard), and the callers that act on the bytes check the file's size afterwards.
        let map = unsafe { Mmap::map(file)? };
        let guard = sigbus::guard(map.as_ptr(), map.len());
        Ok(Mapped { _guard: guard, map })
    }
}

impl Deref for Mapped {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.map
    }
}
