//! What a simulation reports: every loaded object and every search, as `ldcache explain` shows
//! them and serialises them. The engine (`process.rs`) keeps its own state beside it.

use serde::Serialize;

use crate::candidate::Opened;

/// Which step of the search found a library.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Via {
    /// `DT_RPATH` of the requesting object, its loaders, or the main program.
    Rpath,
    LdLibraryPath,
    /// `DT_RUNPATH` of the requesting object.
    Runpath,
    LdSoCache,
    /// The loader's default directories.
    Default,
    /// An object already loaded under this name or soname: no search.
    AlreadyLoaded,
    /// The name contains `/` and is opened as written.
    Path,
    /// The requesting object's resolution-cache note.
    Note,
}

/// One file the loader tries.
#[derive(Debug, Clone, Serialize)]
pub struct Attempt {
    pub path: String,
    pub via: Via,
    #[serde(flatten)]
    pub opened: Opened,
    /// The directory `stat` that followed a miss, when it was needed: `true` if it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dir_stat_failed: Option<bool>,
}

/// The search for one `DT_NEEDED` name.
#[derive(Debug, Clone, Serialize)]
pub struct Lookup {
    pub soname: String,
    /// The file the loader uses (for `already_loaded`, that object's name).
    pub resolved: Option<String>,
    pub via: Option<Via>,
    /// Failing `open` and `stat` calls this search makes.
    pub failed_lookups: u32,
    pub attempts: Vec<Attempt>,
    /// Why the loader stops, when it does (library not found, bad candidate).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One loaded object and the searches for its needs.
#[derive(Debug, Clone, Serialize)]
pub struct LoadedObject {
    /// The name the loader opened it by (`l_name`); for the main program, the path given.
    pub path: String,
    /// What the loader makes of the object's resolution cache (absent when it has none).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    pub needed: Vec<Lookup>,
}

/// The whole start-up: objects in load order.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub objects: Vec<LoadedObject>,
    pub failed_lookups: u32,
}
