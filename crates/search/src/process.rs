//! A step-by-step model of one process start: which file each `DT_NEEDED` opens and which failing
//! system calls the search makes, following glibc's `_dl_map_object_deps` (breadth first) and the
//! search of `_dl_map_object`/`_dl_map_new_object` for each name.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use ldcache_elf::{ElfInfo, Linkage, DF_1_NODEFLIB};
use ldcache_note::{Cache, Place, Present, Rules, SearchTag};

use crate::candidate::{self, Expected, Opened, EACCES, ENOENT};
use crate::ldsocache::{self, LdSoCache};
use crate::paths::{self, Tokens};
use crate::profile::LoaderProfile;
use crate::report::{Attempt, LoadedObject, Lookup, Report, Via};
use crate::Error;

/// The parts of the process environment that steer the search.
#[derive(Debug, Clone, Default)]
pub struct Environment {
    /// `LD_LIBRARY_PATH` (ignored in secure mode, as the loader unsets it).
    pub library_path: Option<String>,
    /// Secure mode (`AT_SECURE`, e.g. setuid): restricts `$ORIGIN` and drops `LD_LIBRARY_PATH`.
    pub secure: bool,
    /// The working directory, against which relative search directories are opened.
    pub cwd: PathBuf,
    /// Which resolution caches the loader consults.
    pub cache: CacheMode,
}

/// The loader's use of resolution-cache notes.
#[derive(Debug, Clone, Default)]
pub enum CacheMode {
    /// A stock loader: notes are ignored.
    Off,
    /// The patched loader with the notes the files carry.
    #[default]
    Present,
    /// The patched loader with the notes `ldcache` would write under these rules.
    Computed(Rules),
}

/// One loaded object as the engine sees it: what the report shows ([`LoadedObject`]) and what
/// the search needs of it.
struct Object {
    /// The name the loader opened it by (`l_name`); for the main program, the path given.
    path: String,
    note: Option<String>,
    needed: Vec<Lookup>,
    info: ElfInfo,
    cache: Option<(Cache, SearchTag)>,
    loader: Option<usize>,
    names: Vec<String>,
    id: Option<FileId>,
    /// `$ORIGIN`: the directory the object was loaded from.
    origin: Option<String>,
    rpath: Option<Vec<usize>>,
    runpath: Option<Vec<usize>>,
}

impl From<Object> for LoadedObject {
    fn from(object: Object) -> LoadedObject {
        LoadedObject {
            path: object.path,
            note: object.note,
            needed: object.needed,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Unknown,
    Existing,
    Nonexisting,
}

/// A search directory; like the loader, one per distinct name for the whole process, with a
/// status per capability subdirectory, so a missing directory is `stat`ed only once.
struct Dir {
    name: String,
    status: Vec<Status>,
}

/// A file's identity (device, inode), which the loader compares to spot one file under two names.
type FileId = (u64, u64);

/// A file the search found.
struct Hit {
    path: String,
    via: Via,
    id: FileId,
}

enum CacheState {
    Unread,
    Unavailable,
    Loaded(LdSoCache),
}

/// Simulates the loader starting `main` and returns every search it makes.
pub fn simulate(main: &Path, profile: &LoaderProfile, env: &Environment) -> Result<Report, Error> {
    let data = std::fs::read(main).map_err(|e| Error::io(main, e))?;
    let info = ldcache_elf::parse(&data).map_err(|e| Error::elf(main, e))?;
    if info.linkage != Linkage::Dynamic {
        return Err(Error::msg(format!(
            "{}: not dynamically linked ({:?})",
            main.display(),
            info.linkage
        )));
    }
    let mut process = Process::new(profile, env, &info);
    let origin = std::fs::canonicalize(main)
        .ok()
        .and_then(|p| p.parent().map(|d| d.to_string_lossy().into_owned()));
    process.add_object(
        main.to_string_lossy().into_owned(),
        info,
        None,
        origin,
        Vec::new(),
        None,
    );
    process.add_interpreter();
    process.run();
    let failed_lookups = process
        .objects
        .iter()
        .flat_map(|o| &o.needed)
        .map(|l| l.failed_lookups)
        .sum();
    Ok(Report {
        objects: process
            .objects
            .into_iter()
            .map(LoadedObject::from)
            .collect(),
        failed_lookups,
    })
}

struct Process<'a> {
    profile: &'a LoaderProfile,
    env: &'a Environment,
    expected: Expected,
    cache_flags: Option<i32>,
    dirs: Vec<Dir>,
    dir_ids: HashMap<String, usize>,
    library_path: Vec<usize>,
    system_dirs: Vec<usize>,
    ld_so_cache: CacheState,
    /// The loader's `errno` carries over between calls and decides whether a walk goes on.
    errno: i32,
    objects: Vec<Object>,
    /// The loader itself: matched by name and soname, never reported.
    rtld: Option<Object>,
}

impl<'a> Process<'a> {
    fn new(profile: &'a LoaderProfile, env: &'a Environment, main: &ElfInfo) -> Self {
        let mut process = Process {
            profile,
            env,
            expected: Expected::of(&main.header),
            cache_flags: ldsocache::expected_flags(
                main.header.machine,
                main.header.class == ldcache_elf::Class::Elf64,
            ),
            dirs: Vec::new(),
            dir_ids: HashMap::new(),
            library_path: Vec::new(),
            system_dirs: Vec::new(),
            ld_so_cache: CacheState::Unread,
            errno: ENOENT,
            objects: Vec::new(),
            rtld: None,
        };
        process.system_dirs = profile
            .system_dirs
            .iter()
            .map(|d| process.dir_id(&paths::normalize_slash(d)))
            .collect();
        process
    }

    fn tokens(&self, origin: Option<&'a str>, is_executable: bool) -> Tokens<'a> {
        Tokens {
            origin,
            platform: self.profile.platform.as_deref(),
            lib: &self.profile.lib,
            secure: self.env.secure,
            is_executable,
            trusted: &self.profile.system_dirs,
        }
    }

    fn dir_id(&mut self, name: &str) -> usize {
        if let Some(&id) = self.dir_ids.get(name) {
            return id;
        }
        // Relative directories are never marked missing: the working directory may change.
        let initial = if name.starts_with('/') {
            Status::Unknown
        } else {
            Status::Existing
        };
        self.dirs.push(Dir {
            name: name.to_string(),
            status: vec![initial; self.profile.subdirs.len()],
        });
        self.dir_ids.insert(name.to_string(), self.dirs.len() - 1);
        self.dirs.len() - 1
    }

    fn decompose(
        &mut self,
        path: &str,
        separators: &[char],
        origin: Option<&str>,
        is_exec: bool,
    ) -> Vec<usize> {
        // Tokens borrow the origin only for the call.
        let origin = origin.map(str::to_string);
        let tokens = Tokens {
            origin: origin.as_deref(),
            ..self.tokens(None, is_exec)
        };
        let names = paths::decompose(path, separators, &tokens);
        names.iter().map(|n| self.dir_id(n)).collect()
    }

    fn add_object(
        &mut self,
        path: String,
        info: ElfInfo,
        loader: Option<usize>,
        origin: Option<String>,
        names: Vec<String>,
        id: Option<FileId>,
    ) -> usize {
        let is_main = self.objects.is_empty();
        if is_main {
            // The main program's origin also serves `$ORIGIN` in LD_LIBRARY_PATH.
            if let (Some(llp), false) = (&self.env.library_path, self.env.secure) {
                if !llp.is_empty() {
                    let llp = llp.clone();
                    self.library_path = self.decompose(&llp, &[':', ';'], origin.as_deref(), true);
                }
            }
        }
        let runpath = info
            .dynamic
            .runpath
            .clone()
            .map(|p| self.decompose(&p, &[':'], origin.as_deref(), is_main));
        // The loader ignores DT_RPATH when DT_RUNPATH is present.
        let rpath = match (&info.dynamic.runpath, info.dynamic.rpath.clone()) {
            (None, Some(p)) => Some(self.decompose(&p, &[':'], origin.as_deref(), is_main)),
            _ => None,
        };
        let id = id.or_else(|| {
            use std::os::unix::fs::MetadataExt;
            std::fs::metadata(&path).ok().map(|m| (m.dev(), m.ino()))
        });
        let (cache, note) = self.cache_of(&info);
        self.objects.push(Object {
            path,
            note,
            needed: Vec::new(),
            info,
            cache,
            loader,
            names,
            id,
            origin,
            rpath,
            runpath,
        });
        self.objects.len() - 1
    }

    /// The cache the loader would use for an object, and a word on it for the report.
    fn cache_of(&self, info: &ElfInfo) -> (Option<(Cache, SearchTag)>, Option<String>) {
        match &self.env.cache {
            CacheMode::Off => (None, None),
            CacheMode::Present => match Present::read(info) {
                None => (None, None),
                Some(present) => match present.usable(info) {
                    Ok(cache) => (Some((cache.clone(), present.tag())), Some("used".into())),
                    Err(reason) => (None, Some(format!("ignored: {reason}"))),
                },
            },
            CacheMode::Computed(rules) => match ldcache_note::compute(info, rules) {
                Some(computed) => (
                    Some((computed.cache, computed.fingerprint.tag)),
                    Some("computed".into()),
                ),
                None => (None, None),
            },
        }
    }

    /// The loader is in the namespace from the start, under its `PT_INTERP` name and soname.
    fn add_interpreter(&mut self) {
        let Some(path) = self.objects[0].info.interpreter.clone() else {
            return;
        };
        let info = std::fs::read(&path)
            .ok()
            .and_then(|data| ldcache_elf::parse(&data).ok());
        use std::os::unix::fs::MetadataExt;
        let id = std::fs::metadata(&path).ok().map(|m| (m.dev(), m.ino()));
        if let Some(info) = info {
            self.rtld = Some(Object {
                path: path.clone(),
                note: None,
                needed: Vec::new(),
                info,
                cache: None,
                loader: None,
                names: vec![path],
                id,
                origin: None,
                rpath: None,
                runpath: None,
            });
        }
    }

    /// Breadth first, like `_dl_map_object_deps`: all needs of one object, then the next object.
    fn run(&mut self) {
        let mut next = 0;
        while next < self.objects.len() {
            let needed = self.objects[next].info.dynamic.needed.clone();
            for name in needed {
                let lookup = self.lookup(&name, next);
                self.objects[next].needed.push(lookup);
            }
            next += 1;
        }
    }

    fn loaded_named(&self, name: &str) -> Option<String> {
        let main = self.objects.first();
        self.objects
            .iter()
            .chain(self.rtld.as_ref())
            .find(|o| {
                let is_main = main.is_some_and(|m| std::ptr::eq(m, *o));
                (!is_main && o.path == name)
                    || o.names.iter().any(|n| n == name)
                    || o.info.dynamic.soname.as_deref() == Some(name)
            })
            .map(|o| o.path.clone())
    }

    fn lookup(&mut self, name: &str, requester: usize) -> Lookup {
        let mut lookup = Lookup {
            soname: name.to_string(),
            resolved: None,
            via: None,
            failed_lookups: 0,
            attempts: Vec::new(),
            error: None,
        };
        if let Some(path) = self.loaded_named(name) {
            lookup.resolved = Some(path);
            lookup.via = Some(Via::AlreadyLoaded);
            return lookup;
        }
        match self.search(name, requester, &mut lookup) {
            Ok(Some(hit)) => {
                lookup.via = Some(hit.via);
                lookup.resolved = Some(hit.path.clone());
                self.register(hit.path, name, requester, hit.id, &mut lookup);
            }
            Ok(None) => {
                lookup.error = Some(format!(
                    "{name}: cannot open shared object file: No such file or directory"
                ));
            }
            Err(reason) => lookup.error = Some(format!("{name}: {reason}")),
        }
        lookup
    }

    /// A found file becomes a new object, unless it is one already loaded under another name.
    fn register(
        &mut self,
        path: String,
        name: &str,
        requester: usize,
        id: FileId,
        lookup: &mut Lookup,
    ) {
        let same_file = self
            .objects
            .iter_mut()
            .chain(self.rtld.as_mut())
            .find(|o| o.id == Some(id));
        if let Some(object) = same_file {
            object.names.push(name.to_string());
            return;
        }
        let info = match std::fs::read(&path)
            .map_err(|e| e.to_string())
            .and_then(|d| ldcache_elf::parse(&d).map_err(|e| e.to_string()))
        {
            Ok(info) => info,
            Err(reason) => {
                lookup.error = Some(format!("{path}: {reason}"));
                return;
            }
        };
        let absolute = if path.starts_with('/') {
            path.clone()
        } else {
            format!("{}/{path}", self.env.cwd.display())
        };
        let origin = match absolute.rfind('/') {
            Some(0) => "/".to_string(),
            Some(at) => absolute[..at].to_string(),
            None => absolute.clone(),
        };
        self.add_object(
            path,
            info,
            Some(requester),
            Some(origin),
            vec![name.to_string()],
            Some(id),
        );
    }

    /// The search sequence of `_dl_map_object` for a name; `Err` when the loader stops.
    fn search(
        &mut self,
        name: &str,
        requester: usize,
        lookup: &mut Lookup,
    ) -> Result<Option<Hit>, String> {
        if name.contains('/') {
            let origin = self.objects[requester].origin.clone();
            let tokens = Tokens {
                origin: origin.as_deref(),
                ..self.tokens(None, requester == 0)
            };
            let Some(path) = paths::expand(name, &tokens) else {
                return Ok(None);
            };
            return Ok(self.try_file(&path, Via::Path, lookup)?.map(|id| Hit {
                path,
                via: Via::Path,
                id,
            }));
        }

        let loader_has_runpath = self.objects[requester].runpath.is_some();
        if !loader_has_runpath {
            let mut did_main = false;
            let mut chain = Some(requester);
            while let Some(i) = chain {
                // The requester's own DT_RPATH step may be served from its cache first.
                if i == requester {
                    if let Some(hit) =
                        self.search_cache(name, requester, SearchTag::Rpath, lookup)?
                    {
                        return Ok(Some(hit));
                    }
                }
                if let Some(dirs) = self.objects[i].rpath.clone() {
                    if let Some(hit) = self.open_path(name, &dirs, Via::Rpath, lookup)? {
                        return Ok(Some(hit));
                    }
                    did_main |= i == 0;
                }
                chain = self.objects[i].loader;
            }
            if !did_main {
                if let Some(dirs) = self.objects[0].rpath.clone() {
                    if let Some(hit) = self.open_path(name, &dirs, Via::Rpath, lookup)? {
                        return Ok(Some(hit));
                    }
                }
            }
        }
        if !self.library_path.is_empty() {
            let dirs = self.library_path.clone();
            if let Some(hit) = self.open_path(name, &dirs, Via::LdLibraryPath, lookup)? {
                return Ok(Some(hit));
            }
        }
        if let Some(hit) = self.search_cache(name, requester, SearchTag::Runpath, lookup)? {
            return Ok(Some(hit));
        }
        if let Some(dirs) = self.objects[requester].runpath.clone() {
            if let Some(hit) = self.open_path(name, &dirs, Via::Runpath, lookup)? {
                return Ok(Some(hit));
            }
        }
        let nodeflib = self.objects[requester].info.dynamic.flags_1 & DF_1_NODEFLIB != 0;
        if let Some(path) = self.cache_lookup(name, nodeflib, lookup) {
            if let Some(id) = self.try_file(&path, Via::LdSoCache, lookup)? {
                let via = Via::LdSoCache;
                return Ok(Some(Hit { path, via, id }));
            }
        }
        if !nodeflib {
            let dirs = self.system_dirs.clone();
            if let Some(hit) = self.open_path(name, &dirs, Via::Default, lookup)? {
                return Ok(Some(hit));
            }
        }
        Ok(None)
    }

    /// The places the requester's cache records for `name`, when its cache replaces the `step`:
    /// `=file` opened and verified like any candidate, `?dir` searched like a search-path directory.
    fn search_cache(
        &mut self,
        name: &str,
        requester: usize,
        step: SearchTag,
        lookup: &mut Lookup,
    ) -> Result<Option<Hit>, String> {
        let places = match &self.objects[requester].cache {
            Some((cache, tag)) if *tag == step => match cache.lookup(name) {
                Some(places) => places.to_vec(),
                None => return Ok(None),
            },
            _ => return Ok(None),
        };
        let origin = self.objects[requester].origin.clone();
        for place in places {
            match place {
                Place::File(path) => {
                    if let Some(id) = self.try_file(&path, Via::Note, lookup)? {
                        let via = Via::Note;
                        return Ok(Some(Hit { path, via, id }));
                    }
                }
                Place::Search(dir) => {
                    let dirs = self.decompose(&dir, &[':'], origin.as_deref(), requester == 0);
                    if let Some(hit) = self.open_path(name, &dirs, Via::Note, lookup)? {
                        return Ok(Some(hit));
                    }
                }
            }
        }
        Ok(None)
    }

    /// The ld.so.cache step: the file is read at its first use; a missing file is one failing open.
    fn cache_lookup(&mut self, name: &str, nodeflib: bool, lookup: &mut Lookup) -> Option<String> {
        if let CacheState::Unread = self.ld_so_cache {
            self.ld_so_cache = match &self.profile.cache_file {
                None => CacheState::Unavailable,
                Some(file) => match std::fs::read(file) {
                    Ok(data) => LdSoCache::parse(&data)
                        .map(CacheState::Loaded)
                        .unwrap_or(CacheState::Unavailable),
                    Err(error) => {
                        lookup.failed_lookups += 1;
                        self.errno = error.raw_os_error().unwrap_or(ENOENT);
                        CacheState::Unavailable
                    }
                },
            };
        }
        let CacheState::Loaded(cache) = &self.ld_so_cache else {
            return None;
        };
        let flags = self.cache_flags;
        let path = cache.lookup(name, |f| flags.is_none_or(|e| f == e), &self.profile.hwcaps)?;
        // DF_1_NODEFLIB: no cache entry from a default directory.
        if nodeflib
            && self
                .profile
                .system_dirs
                .iter()
                .any(|d| path.starts_with(&paths::normalize_slash(d)))
        {
            return None;
        }
        Some(path.to_string())
    }

    /// Opens one file outside any directory walk (cache hit, name with `/`).
    fn try_file(
        &mut self,
        path: &str,
        via: Via,
        lookup: &mut Lookup,
    ) -> Result<Option<FileId>, String> {
        let opened = candidate::open(path, self.expected);
        let result = match &opened {
            Opened::Accepted { id } => Some(*id),
            Opened::Failed { errno } => {
                self.errno = *errno;
                lookup.failed_lookups += 1;
                None
            }
            Opened::OtherClass | Opened::OtherMachine => None,
            Opened::Fatal { reason } => return Err(reason.clone()),
        };
        lookup.attempts.push(Attempt {
            path: path.to_string(),
            via,
            opened,
            dir_stat_failed: None,
        });
        Ok(result)
    }

    /// `open_path`: every directory, every capability subdirectory not known to be missing.
    fn open_path(
        &mut self,
        name: &str,
        dirs: &[usize],
        via: Via,
        lookup: &mut Lookup,
    ) -> Result<Option<Hit>, String> {
        for &dir in dirs {
            for slot in 0..self.profile.subdirs.len() {
                if self.dirs[dir].status[slot] == Status::Nonexisting {
                    continue;
                }
                let subdir = &self.profile.subdirs[slot];
                let dir_path = format!("{}{}", self.dirs[dir].name, subdir);
                let path = format!("{dir_path}{name}");
                let opened = candidate::open(&path, self.expected);
                let mut attempt = Attempt {
                    path: path.clone(),
                    via,
                    opened: opened.clone(),
                    dir_stat_failed: None,
                };
                match opened {
                    Opened::Failed { errno } => {
                        self.errno = errno;
                        lookup.failed_lookups += 1;
                    }
                    Opened::OtherClass | Opened::OtherMachine => self.errno = ENOENT,
                    Opened::Fatal { reason } => {
                        lookup.attempts.push(attempt);
                        return Err(reason);
                    }
                    Opened::Accepted { .. } => {}
                }
                if self.dirs[dir].status[slot] == Status::Unknown {
                    self.dirs[dir].status[slot] = if let Opened::Accepted { .. } = opened {
                        Status::Existing
                    } else {
                        // The stat names the directory without its trailing slash.
                        let stat_path = dir_path.strip_suffix('/').unwrap_or(&dir_path);
                        match candidate::stat_dir(stat_path) {
                            Ok(is_dir) => {
                                attempt.dir_stat_failed = Some(false);
                                if is_dir {
                                    Status::Existing
                                } else {
                                    Status::Nonexisting
                                }
                            }
                            Err(errno) => {
                                attempt.dir_stat_failed = Some(true);
                                self.errno = errno;
                                lookup.failed_lookups += 1;
                                Status::Nonexisting
                            }
                        }
                    };
                }
                lookup.attempts.push(attempt);
                if let Opened::Accepted { id } = opened {
                    return Ok(Some(Hit { path, via, id }));
                }
            }
            // A failure other than "missing" or "forbidden" ends the walk of this list.
            if self.errno != ENOENT && self.errno != EACCES {
                return Ok(None);
            }
        }
        Ok(None)
    }
}
