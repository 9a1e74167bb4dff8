//! The resolution-cache note: for each needed soname, the places a loader should try, in order.
//!
//! Two notes, both owned by `NixOS` and placed in a `PT_NOTE`:
//! - the cache itself (type `0x63a86cb6`, section `.note.nixos.ldcache`), in the format patchelf ≥ 0.19
//!   writes, so either tool's notes work with either loader ([`Cache`]);
//! - this project's fingerprint (type `0x63a86cb7`): which search path the cache was computed from, so a
//!   loader can tell when the object was edited afterwards and ignore a stale cache ([`Fingerprint`]).
//!
//! [`compute`] derives both for one ELF object from the files present at build time. Writing them into
//! the file is the injector's job; this crate only computes, encodes and decodes.

#![forbid(unsafe_code)]

mod cache;
mod compute;
mod fingerprint;
mod present;
mod store;

pub use cache::{Cache, DecodeError, Entry, Place};
pub use compute::{compute, Computed, Rules};
pub use fingerprint::{xxh64, Fingerprint, SearchTag, NT_NIXOS_LDCACHE_FINGERPRINT};
pub use ldcache_elf::{NOTE_OWNER_NIXOS, NT_NIXOS_LDCACHE};
pub use present::Present;
