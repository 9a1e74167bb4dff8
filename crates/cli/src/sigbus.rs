//! Reading mapped files that another process may truncate meanwhile. Touching a page of a mapped
//! file that lies past its new end raises SIGBUS, which kills the process. Inside a guarded
//! mapping, the handler maps a page of zeros over the faulting page instead and the access is
//! retried: it reads zeros. The caller learns of the change otherwise (the file's size differs
//! when `replace` checks it, or its headers no longer parse) and refuses the file.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Once;

/// Guarded ranges, [start, end): a fixed table, because the handler may not allocate or lock.
/// Two mappings per worker thread are in use at a time.
const SLOTS: usize = 512;
static STARTS: [AtomicUsize; SLOTS] = [const { AtomicUsize::new(0) }; SLOTS];
static ENDS: [AtomicUsize; SLOTS] = [const { AtomicUsize::new(0) }; SLOTS];
static PAGE: AtomicUsize = AtomicUsize::new(4096);

/// A mapping under guard, until dropped.
pub struct Guard {
    slot: Option<usize>,
}

/// Guards the `len` bytes at `start` (a mapping of a file). With every slot taken the mapping is
/// left unguarded: a truncation then kills the process, as it would without this module.
pub fn guard(start: *const u8, len: usize) -> Guard {
    install();
    if len == 0 {
        return Guard { slot: None };
    }
    let start = start as usize;
    for slot in 0..SLOTS {
        if STARTS[slot]
            .compare_exchange(0, start, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
        {
            ENDS[slot].store(start + len, Ordering::Release);
            return Guard { slot: Some(slot) };
        }
    }
    Guard { slot: None }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(slot) = self.slot {
            ENDS[slot].store(0, Ordering::Release);
            STARTS[slot].store(0, Ordering::Release);
        }
    }
}

fn install() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        if page > 0 {
            PAGE.store(page as usize, Ordering::Relaxed);
        }
        // SAFETY: a zeroed sigaction with a handler of the SA_SIGINFO signature.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            let handler: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                on_sigbus;
            action.sa_sigaction = handler as usize;
            action.sa_flags = libc::SA_SIGINFO;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(libc::SIGBUS, &action, std::ptr::null_mut());
        }
    });
}

/// Only async-signal-safe steps: atomic loads, mmap, signal.
extern "C" fn on_sigbus(_: libc::c_int, info: *mut libc::siginfo_t, _: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo_t for SA_SIGINFO handlers.
    let address = unsafe { (*info).si_addr() } as usize;
    let page = PAGE.load(Ordering::Relaxed);
    for slot in 0..SLOTS {
        let (start, end) = (
            STARTS[slot].load(Ordering::Acquire),
            ENDS[slot].load(Ordering::Acquire),
        );
        if start != 0 && (start..end).contains(&address) {
            // SAFETY: replaces one page inside a mapping this process made and still holds.
            let zeros = unsafe {
                libc::mmap(
                    (address & !(page - 1)) as *mut libc::c_void,
                    page,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
                    -1,
                    0,
                )
            };
            if zeros != libc::MAP_FAILED {
                return;
            }
        }
    }
    // Not a guarded mapping: the default action, when the access is retried.
    // SAFETY: signal is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGBUS, libc::SIG_DFL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn a_truncated_mapping_reads_zeros() {
        let mut temp = tempfile::NamedTempFile::new().unwrap();
        temp.write_all(&[7u8; 3 * 4096]).unwrap();
        let file = std::fs::File::open(temp.path()).unwrap();
        // SAFETY: the test truncates the file on purpose; the guard turns the fault into zeros.
        let map = unsafe { memmap2::Mmap::map(&file).unwrap() };
        let _guard = guard(map.as_ptr(), map.len());
        temp.as_file().set_len(100).unwrap();
        assert_eq!(map[0], 7);
        assert_eq!(map[2 * 4096 + 5], 0, "past the new end: zeros, not SIGBUS");
    }
}
