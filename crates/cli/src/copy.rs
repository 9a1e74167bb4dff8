//! The copy of a file that `ldcache embed` rewrites: a private, copy-on-write mapping of the file,
//! so that changing a few headers of a large library copies a few pages, not the whole file.

use std::fs::File;
use std::io;
use std::ops::{Deref, DerefMut};
use std::os::unix::io::AsRawFd;
use std::ptr::NonNull;

use ldcache_inject::Output;

/// A file's bytes, shared with the page cache until written, with room to grow; or, where a
/// mapping cannot serve, an ordinary owned copy.
pub enum Copy {
    Mapped(Mapping),
    Owned(Vec<u8>),
}

impl Copy {
    /// A copy of the first `len` bytes of `file` (its whole length) with room for `room` more.
    pub fn of(file: &File, len: usize, room: usize) -> io::Result<Copy> {
        Ok(Copy::Mapped(Mapping::new(file, len, room)?))
    }
}

impl Deref for Copy {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            Copy::Mapped(mapping) => mapping,
            Copy::Owned(bytes) => bytes,
        }
    }
}

impl DerefMut for Copy {
    fn deref_mut(&mut self) -> &mut [u8] {
        match self {
            Copy::Mapped(mapping) => mapping,
            Copy::Owned(bytes) => bytes,
        }
    }
}

impl Output for Copy {
    fn copy_of(bytes: &[u8]) -> Self {
        Copy::Owned(bytes.to_vec())
    }

    fn set_len(&mut self, len: usize) {
        match self {
            Copy::Mapped(mapping) if len <= mapping.capacity => mapping.set_len(len),
            Copy::Mapped(mapping) => {
                let mut bytes = mapping.to_vec();
                bytes.resize(len, 0);
                *self = Copy::Owned(bytes);
            }
            Copy::Owned(bytes) => bytes.resize(len, 0),
        }
    }
}

/// `capacity` bytes of private, writable memory: the file's pages first (read from the page cache,
/// copied only when written), then zero pages. Of these, `len` bytes are the contents.
pub struct Mapping {
    start: NonNull<u8>,
    capacity: usize,
    len: usize,
    /// The file's pages read as zeros if another process truncates it meanwhile.
    _guard: crate::sigbus::Guard,
}

// SAFETY: the mapping is private to this value and only reached through `&self`/`&mut self`.
unsafe impl Send for Mapping {}

impl Mapping {
    fn new(file: &File, len: usize, room: usize) -> io::Result<Mapping> {
        let page = page_size();
        let too_large = || io::Error::new(io::ErrorKind::OutOfMemory, "file too large to map");
        let capacity = len
            .checked_add(room)
            .and_then(|n| n.checked_next_multiple_of(page))
            .ok_or_else(too_large)?;
        // Reserve the whole range as zero pages, then map the file over its start.
        // SAFETY: a fresh anonymous mapping; nothing else refers to it.
        let start = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                capacity,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if start == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let mapping = Mapping {
            start: NonNull::new(start.cast()).ok_or_else(too_large)?,
            capacity,
            len,
            _guard: crate::sigbus::guard(start.cast(), len),
        };
        if len > 0 {
            // SAFETY: replaces pages of the reservation just made (MAP_FIXED inside our own range).
            // The file's bytes past its end, up to the page boundary, read as zeros; no page lies
            // wholly past the end (`len` is the file's length), so no access can fault.
            let file_pages = unsafe {
                libc::mmap(
                    start,
                    len.next_multiple_of(page),
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_FIXED,
                    file.as_raw_fd(),
                    0,
                )
            };
            if file_pages == libc::MAP_FAILED {
                return Err(io::Error::last_os_error());
            }
        }
        Ok(mapping)
    }

    /// Zero bytes appear when the contents grow: whatever was written past a shorter length is
    /// gone, as with a `Vec`. The caller keeps `len` within the capacity.
    fn set_len(&mut self, len: usize) {
        let old_len = self.len;
        self.len = len;
        if len > old_len {
            self[old_len..].fill(0);
        }
    }
}

impl Deref for Mapping {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        // SAFETY: `len <= capacity` bytes of our own mapping, alive as long as `self`.
        unsafe { std::slice::from_raw_parts(self.start.as_ptr(), self.len) }
    }
}

impl DerefMut for Mapping {
    fn deref_mut(&mut self) -> &mut [u8] {
        // SAFETY: as for `deref`, and `&mut self` makes the access exclusive.
        unsafe { std::slice::from_raw_parts_mut(self.start.as_ptr(), self.len) }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: unmaps exactly the range mapped in `new`; no slice of it outlives `self`.
        unsafe {
            libc::munmap(self.start.as_ptr().cast(), self.capacity);
        }
    }
}

fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(size).unwrap_or(4096)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn file_with(bytes: &[u8]) -> (tempfile::NamedTempFile, File) {
        let mut temp = tempfile::NamedTempFile::new().unwrap();
        temp.write_all(bytes).unwrap();
        let file = File::open(temp.path()).unwrap();
        (temp, file)
    }

    #[test]
    fn reads_the_file_and_writes_only_the_copy() {
        let contents: Vec<u8> = (0..10_000u32).map(|i| i as u8).collect();
        let (temp, file) = file_with(&contents);
        let mut copy = Copy::of(&file, contents.len(), 100).unwrap();
        assert_eq!(&copy[..], &contents[..]);
        copy[5000] ^= 0xff;
        copy.set_len(contents.len() + 50);
        assert_eq!(copy.len(), 10_050);
        assert!(copy[10_000..].iter().all(|&b| b == 0));
        copy[10_049] = 7;
        assert_eq!(
            std::fs::read(temp.path()).unwrap(),
            contents,
            "the file is untouched"
        );
    }

    #[test]
    fn cut_then_grown_reads_zeros() {
        let (_temp, file) = file_with(&[1u8; 300]);
        let mut copy = Copy::of(&file, 300, 0).unwrap();
        copy.set_len(100);
        copy.set_len(300);
        assert!(copy[..100].iter().all(|&b| b == 1));
        assert!(copy[100..].iter().all(|&b| b == 0));
    }

    #[test]
    fn grows_past_its_room_into_an_owned_copy() {
        let (_temp, file) = file_with(b"abc");
        let mut copy = Copy::of(&file, 3, 0).unwrap();
        copy.set_len(100_000);
        assert!(matches!(copy, Copy::Owned(_)));
        assert_eq!(&copy[..3], b"abc");
        assert!(copy[3..].iter().all(|&b| b == 0));
    }
}
