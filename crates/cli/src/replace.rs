//! Putting the new version of a file in place of the old one so that, whatever happens (a kill at
//! any instant, a full disk, an I/O error, another process writing, truncating or swapping the
//! file), each of its names ends as the original or as the complete new version.
//!
//! The new version is never written into the original. It is made beside it, in the same
//! directory: an unnamed file (`O_TMPFILE`) gets a kernel-side copy of the original
//! (`copy_file_range`: shared extents where the file system has them), the edit, and then the
//! original's owner, extended attributes (capabilities and ACLs among them) and mode, set-id bits
//! included. Only then does it get a name, and that name is exchanged atomically with the
//! original's (`renameat2(RENAME_EXCHANGE)`). The exchange is undone, and the file refused, when
//! the entry that came out is not the file that was read, or when that file was written to since
//! it was read: a symbolic link swapped in, a truncation, a concurrent run. Hard links inside the
//! tree are pointed at the new version the same way, one by one; links elsewhere keep the
//! original.
//!
//! What it costs: a copy of every file that changes (time and page cache in proportion to its
//! size; twice its size on disk while both exist), and the file's modification time becomes the
//! time of the rewrite, as for any other write. What it does not cover: `fsync` is not called, so
//! a power failure may lose a rewrite that the file system had not yet written back (the rename
//! makes ext4 and XFS write the data first), and a parent directory swapped for a symbolic link is
//! followed. A kill between naming the new version and removing the old name leaves one extra,
//! complete file named `.ldcache-<pid>-<n>` beside the original.

use std::ffi::{CStr, CString, OsStr};
use std::fs::{File, OpenOptions};
use std::io;
use std::mem::MaybeUninit;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::os::unix::io::{AsRawFd, FromRawFd, RawFd};

use crate::refusal::Kind;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use ldcache_inject::Edit;

/// Why a file was not replaced although nothing failed: it is left as it was.
pub enum Failure {
    /// A refusal, with the reason: the file changed under us (`Kind::Changed`), or its metadata
    /// cannot be kept (`Kind::Metadata`).
    Refused(Kind, String),
    /// The system failed (no space, I/O error, permissions on the directory, ...).
    Io(io::Error),
}

impl From<io::Error> for Failure {
    fn from(error: io::Error) -> Failure {
        Failure::Io(error)
    }
}

/// A regular file opened for reading by the name it was found under, and what it was then.
pub struct Original {
    file: File,
    stat: libc::stat,
}

impl Original {
    /// Opens `path` without following a symbolic link and without blocking on a FIFO or a device;
    /// `None` when it is not a regular file (any more).
    pub fn open(path: &Path) -> io::Result<Option<Original>> {
        let opened = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY)
            .open(path);
        let file = match opened {
            Ok(file) => file,
            Err(error) if error.raw_os_error() == Some(libc::ELOOP) => return Ok(None),
            Err(error) => return Err(error),
        };
        let stat = fstat(file.as_raw_fd())?;
        if stat.st_mode & libc::S_IFMT != libc::S_IFREG {
            return Ok(None);
        }
        Ok(Some(Original { file, stat }))
    }

    pub fn file(&self) -> &File {
        &self.file
    }

    /// The length the file had when it was opened.
    pub fn len(&self) -> u64 {
        self.stat.st_size as u64
    }

    /// How the file's contents changed since its status was `then`, if they did: a write or a
    /// truncation sets its modification time. (Not its status time: renaming and linking the
    /// file, as this module does, set that too.)
    fn change_since(&self, then: &libc::stat) -> io::Result<Option<&'static str>> {
        let now = fstat(self.file.as_raw_fd())?;
        Ok(if now.st_size != then.st_size {
            Some("its size changed while it was being processed")
        } else if (now.st_mtime, now.st_mtime_nsec) != (then.st_mtime, then.st_mtime_nsec) {
            Some("it was written to while it was being processed")
        } else {
            None
        })
    }

    /// How the file's contents changed since it was opened, if they did.
    pub fn change(&self) -> io::Result<Option<&'static str>> {
        self.change_since(&self.stat)
    }

    fn is(&self, other: &libc::stat) -> bool {
        (other.st_dev, other.st_ino) == (self.stat.st_dev, self.stat.st_ino)
    }

    /// Replaces the file found at `path`, and then at each of `links` (other names of the same
    /// file inside the tree), with the original's bytes changed by `edit`.
    pub fn replace(&self, path: &Path, links: &[PathBuf], edit: &Edit) -> Result<(), Failure> {
        let place = Place::of(path)?;
        let mut new = NewFile::create(&place.dir)?;
        if !copy_contents(&self.file, &new.file, self.len())? {
            return Err(Failure::Refused(
                Kind::Changed,
                "its size changed while it was being processed".into(),
            ));
        }
        edit.write_to(&new.file)?;
        keep_metadata(&self.file, &self.stat, &new.file)?;
        if let Some(change) = self.change_since(&self.stat)? {
            return Err(Failure::Refused(Kind::Changed, change.into()));
        }
        self.swap_in(&place, new.name(&place.dir)?, &self.stat)?;
        for link in links {
            let link_place = Place::of(link)?;
            let temporary = Temporary::link(&new.file, &link_place.dir)?;
            self.swap_in(&link_place, temporary, &self.stat)
                .map_err(|failure| match failure {
                    Failure::Refused(kind, why) => {
                        Failure::Refused(kind, format!("{why} (its hard link {})", link.display()))
                    }
                    io => io,
                })?;
        }
        Ok(())
    }

    /// Exchanges `temporary` (the new version) with `place`'s entry, which must be this file,
    /// unchanged since `then`; undoes the exchange otherwise. Either way the temporary name is
    /// removed: it then names the old version, or the new one.
    fn swap_in(
        &self,
        place: &Place,
        temporary: Temporary,
        then: &libc::stat,
    ) -> Result<(), Failure> {
        let dir = place.dir.as_raw_fd();
        match exchange(dir, &temporary.name, &place.name) {
            Ok(()) => {
                let out = fstatat(dir, &temporary.name)?;
                let change = if !self.is(&out) {
                    Some("another file took its name while it was being processed")
                } else {
                    self.change_since(then)?
                };
                if let Some(change) = change {
                    if let Err(error) = exchange(dir, &temporary.name, &place.name) {
                        // The other file stays under the temporary name rather than be lost.
                        temporary.keep();
                        return Err(error.into());
                    }
                    return Err(Failure::Refused(Kind::Changed, change.into()));
                }
                Ok(())
            }
            // A file system without the exchange: check, then rename over (a short window).
            Err(error) if matches!(error.raw_os_error(), Some(libc::EINVAL | libc::ENOSYS)) => {
                if !self.is(&fstatat(dir, &place.name)?) {
                    return Err(Failure::Refused(
                        Kind::Changed,
                        "another file took its name while it was being processed".into(),
                    ));
                }
                if let Some(change) = self.change_since(then)? {
                    return Err(Failure::Refused(Kind::Changed, change.into()));
                }
                rename(dir, &temporary.name, &place.name)?;
                temporary.keep();
                Ok(())
            }
            Err(error) => Err(error.into()),
        }
    }
}

/// A directory entry: the directory, opened, and the name in it.
struct Place {
    dir: File,
    name: CString,
}

impl Place {
    fn of(path: &Path) -> io::Result<Place> {
        let name = path
            .file_name()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not a file name"))?;
        let parent = match path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent,
            _ => Path::new("."),
        };
        let dir = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY | libc::O_PATH)
            .open(parent)?;
        Ok(Place {
            dir,
            name: c_string(name)?,
        })
    }
}

/// The file the new version is written to: unnamed until it is complete.
struct NewFile {
    file: File,
    /// Set when the file system could not make an unnamed file: the name it was made under.
    named: Option<Temporary>,
}

impl NewFile {
    fn create(dir: &File) -> io::Result<NewFile> {
        let flags = libc::O_RDWR | libc::O_CLOEXEC;
        if Path::new("/proc/self/fd").is_dir() {
            // SAFETY: a valid directory descriptor and a NUL-terminated name.
            let fd = unsafe {
                libc::openat(
                    dir.as_raw_fd(),
                    c".".as_ptr(),
                    flags | libc::O_TMPFILE,
                    0o600,
                )
            };
            if fd >= 0 {
                // SAFETY: a descriptor just opened, owned by nothing else.
                let file = unsafe { File::from_raw_fd(fd) };
                return Ok(NewFile { file, named: None });
            }
            let error = io::Error::last_os_error();
            if !matches!(error.raw_os_error(), Some(libc::EOPNOTSUPP | libc::EISDIR)) {
                return Err(error);
            }
        }
        let name = Temporary::fresh_name();
        // SAFETY: as above.
        let fd = unsafe {
            libc::openat(
                dir.as_raw_fd(),
                name.as_ptr(),
                flags | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW,
                0o600,
            )
        };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: as above.
        let file = unsafe { File::from_raw_fd(fd) };
        let named = Some(Temporary::new(dir, name)?);
        Ok(NewFile { file, named })
    }

    /// A name for the complete new version, in `dir`.
    fn name(&mut self, dir: &File) -> io::Result<Temporary> {
        match self.named.take() {
            Some(named) => Ok(named),
            None => Temporary::link(&self.file, dir),
        }
    }
}

const TEMPORARY_PREFIX: &str = ".ldcache-";

/// Whether `name` is one a run gives a new version for a moment (`.ldcache-<pid>-<n>`): the
/// walker leaves such files to the run that made them.
pub fn is_temporary_name(name: &OsStr) -> bool {
    let name = name.to_string_lossy();
    name.strip_prefix(TEMPORARY_PREFIX).is_some_and(|rest| {
        let numeric = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
        rest.split_once('-')
            .is_some_and(|(pid, n)| numeric(pid) && numeric(n))
    })
}

/// A temporary name in a directory, removed when dropped (unless kept): after a successful
/// exchange it names the old version, after a failed one the new.
struct Temporary {
    dir: File,
    name: CString,
    kept: bool,
}

impl Temporary {
    fn new(dir: &File, name: CString) -> io::Result<Temporary> {
        Ok(Temporary {
            dir: dir.try_clone()?,
            name,
            kept: false,
        })
    }

    /// Leaves the name in place (it was renamed away, or must not be removed).
    fn keep(mut self) {
        self.kept = true;
    }

    /// `.ldcache-<pid>-<n>`: unique to this process; see [`is_temporary_name`].
    fn fresh_name() -> CString {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        CString::new(format!("{TEMPORARY_PREFIX}{}-{n}", std::process::id())).expect("no NUL")
    }

    /// Gives the open `file` a fresh name in `dir`.
    fn link(file: &File, dir: &File) -> io::Result<Temporary> {
        let from = CString::new(format!("/proc/self/fd/{}", file.as_raw_fd())).expect("no NUL");
        let name = Temporary::fresh_name();
        // SAFETY: NUL-terminated names and valid descriptors.
        let result = unsafe {
            libc::linkat(
                libc::AT_FDCWD,
                from.as_ptr(),
                dir.as_raw_fd(),
                name.as_ptr(),
                libc::AT_SYMLINK_FOLLOW,
            )
        };
        if result != 0 {
            return Err(io::Error::last_os_error());
        }
        Temporary::new(dir, name)
    }
}

impl Drop for Temporary {
    fn drop(&mut self) {
        if self.kept {
            return;
        }
        // SAFETY: a NUL-terminated name in a valid directory. Failing leaves an extra name.
        unsafe {
            libc::unlinkat(self.dir.as_raw_fd(), self.name.as_ptr(), 0);
        }
    }
}

/// Copies the first `len` bytes of `from` to `to`; false when `from` turned out shorter.
fn copy_contents(from: &File, to: &File, len: u64) -> io::Result<bool> {
    let mut done = 0u64;
    while done < len {
        let mut off_in = done as libc::loff_t;
        let mut off_out = done as libc::loff_t;
        let want = (len - done).min(1 << 30) as usize;
        // SAFETY: valid descriptors and offsets owned by this frame.
        let n = unsafe {
            libc::copy_file_range(
                from.as_raw_fd(),
                &mut off_in,
                to.as_raw_fd(),
                &mut off_out,
                want,
                0,
            )
        };
        if n < 0 {
            let error = io::Error::last_os_error();
            return match error.raw_os_error() {
                Some(libc::EXDEV | libc::EINVAL | libc::ENOSYS | libc::EOPNOTSUPP) => {
                    copy_by_reading(from, to, done, len)
                }
                _ => Err(error),
            };
        }
        if n == 0 {
            return Ok(false);
        }
        done += n as u64;
    }
    Ok(true)
}

fn copy_by_reading(from: &File, to: &File, mut done: u64, len: u64) -> io::Result<bool> {
    let mut buffer = vec![0u8; 1 << 20];
    while done < len {
        let want = (len - done).min(buffer.len() as u64) as usize;
        let n = from.read_at(&mut buffer[..want], done)?;
        if n == 0 {
            return Ok(false);
        }
        to.write_all_at(&buffer[..n], done)?;
        done += n as u64;
    }
    Ok(true)
}

/// Gives `to` the owner, extended attributes and mode of `from` (whose status is `stat`), in the
/// order that keeps them: the owner first (a change of owner clears set-id bits and
/// capabilities), the mode last (it must agree with an access ACL). A refusal when the system
/// will not keep one of them (a capability or a foreign group for a user who is not root).
fn keep_metadata(from: &File, stat: &libc::stat, to: &File) -> Result<(), Failure> {
    let (source, target) = (from.as_raw_fd(), to.as_raw_fd());
    // SAFETY: a valid descriptor.
    if unsafe { libc::fchown(target, stat.st_uid, stat.st_gid) } != 0 {
        return Err(refused("its owner", io::Error::last_os_error()));
    }
    let wanted = xattr_names(source)?;
    for name in xattr_names(target)? {
        if !wanted.contains(&name) {
            // SAFETY: a valid descriptor and a NUL-terminated name.
            if unsafe { libc::fremovexattr(target, name.as_ptr()) } != 0 {
                let error = io::Error::last_os_error();
                if error.raw_os_error() != Some(libc::ENODATA) {
                    return Err(refused(&attribute(&name), error));
                }
            }
        }
    }
    for name in &wanted {
        let value = xattr_value(source, name)?;
        // SAFETY: a valid descriptor, a NUL-terminated name and a buffer of the given length.
        let set = unsafe {
            libc::fsetxattr(target, name.as_ptr(), value.as_ptr().cast(), value.len(), 0)
        };
        if set != 0 {
            return Err(refused(&attribute(name), io::Error::last_os_error()));
        }
    }
    let mode = stat.st_mode & 0o7777;
    // SAFETY: a valid descriptor.
    if unsafe { libc::fchmod(target, mode) } != 0 {
        return Err(refused("its mode", io::Error::last_os_error()));
    }
    // The kernel drops a set-group-ID bit silently for a caller outside the group.
    let got = fstat(target)?;
    if (got.st_mode & 0o7777, got.st_uid, got.st_gid) != (mode, stat.st_uid, stat.st_gid) {
        return Err(Failure::Refused(
            Kind::Metadata,
            format!(
                "the new version cannot keep its mode {mode:o} and owner {}:{}",
                stat.st_uid, stat.st_gid
            ),
        ));
    }
    Ok(())
}

fn refused(what: &str, error: io::Error) -> Failure {
    Failure::Refused(
        Kind::Metadata,
        format!("the new version cannot keep {what}: {error}"),
    )
}

fn attribute(name: &CStr) -> String {
    format!("its extended attribute {}", name.to_string_lossy())
}

fn xattr_names(fd: RawFd) -> io::Result<Vec<CString>> {
    let list = read_sized(|buffer, len| {
        // SAFETY: a valid descriptor and a buffer of `len` bytes (or null with 0).
        unsafe { libc::flistxattr(fd, buffer.cast(), len) }
    })?;
    Ok(list
        .split(|&b| b == 0)
        .filter(|name| !name.is_empty())
        .map(|name| CString::new(name).expect("split at NUL"))
        .collect())
}

fn xattr_value(fd: RawFd, name: &CStr) -> io::Result<Vec<u8>> {
    read_sized(|buffer, len| {
        // SAFETY: as above, with a NUL-terminated name.
        unsafe { libc::fgetxattr(fd, name.as_ptr(), buffer.cast(), len) }
    })
}

/// Calls `get` first for the size, then with a buffer of that size; again if it grew meanwhile.
fn read_sized(get: impl Fn(*mut u8, usize) -> isize) -> io::Result<Vec<u8>> {
    loop {
        let size = get(std::ptr::null_mut(), 0);
        if size < 0 {
            let error = io::Error::last_os_error();
            return match error.raw_os_error() {
                Some(libc::ENOTSUP) => Ok(Vec::new()),
                _ => Err(error),
            };
        }
        let mut buffer = vec![0u8; size as usize];
        let got = get(buffer.as_mut_ptr(), buffer.len());
        if got >= 0 {
            buffer.truncate(got as usize);
            return Ok(buffer);
        }
        let error = io::Error::last_os_error();
        if error.raw_os_error() != Some(libc::ERANGE) {
            return Err(error);
        }
    }
}

fn exchange(dir: RawFd, a: &CStr, b: &CStr) -> io::Result<()> {
    // SAFETY: a valid directory descriptor and NUL-terminated names.
    let result =
        unsafe { libc::renameat2(dir, a.as_ptr(), dir, b.as_ptr(), libc::RENAME_EXCHANGE) };
    if result != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn rename(dir: RawFd, from: &CStr, to: &CStr) -> io::Result<()> {
    // SAFETY: as above.
    if unsafe { libc::renameat(dir, from.as_ptr(), dir, to.as_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn fstat(fd: RawFd) -> io::Result<libc::stat> {
    let mut stat = MaybeUninit::<libc::stat>::uninit();
    // SAFETY: a valid descriptor and room for the result.
    if unsafe { libc::fstat(fd, stat.as_mut_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fstat succeeded and filled it.
    Ok(unsafe { stat.assume_init() })
}

fn fstatat(dir: RawFd, name: &CStr) -> io::Result<libc::stat> {
    let mut stat = MaybeUninit::<libc::stat>::uninit();
    // SAFETY: as for fstat, with a NUL-terminated name; the entry itself, never a link's target.
    let result = unsafe {
        libc::fstatat(
            dir,
            name.as_ptr(),
            stat.as_mut_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    if result != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fstatat succeeded and filled it.
    Ok(unsafe { stat.assume_init() })
}

fn c_string(name: &OsStr) -> io::Result<CString> {
    CString::new(name.as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a NUL byte in a file name"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporary_names_are_the_ones_made_here() {
        let made = Temporary::fresh_name();
        assert!(is_temporary_name(OsStr::from_bytes(made.as_bytes())));
        for other in [
            ".ldcache-",
            ".ldcache-12",
            ".ldcache-12-",
            ".ldcache-1-2-3",
            "ldcache-1-2",
        ] {
            assert!(!is_temporary_name(OsStr::new(other)), "{other}");
        }
    }
}
