//! What a particular glibc loader brings to the search: its capability subdirectories, its default
//! directories, its ld.so.cache and the values of `$PLATFORM` and `$LIB`.

use std::path::{Path, PathBuf};
use std::process::Command;

use ldcache_elf::Class;
use serde::Serialize;

/// The loader-specific inputs of the search. The most exact source is the loader itself
/// ([`LoaderProfile::probe`]); [`LoaderProfile::fallback`] is a guess for loaders that cannot run here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LoaderProfile {
    /// The loader this profile describes.
    pub interpreter: PathBuf,
    /// Subdirectories tried inside every search directory, in the loader's order, each ending in `/`;
    /// the last one is `""`, the directory itself (`glibc-hwcaps/x86-64-v3/`, legacy `tls/`, ...).
    pub subdirs: Vec<String>,
    /// Active `glibc-hwcaps` names in priority order (used to rank ld.so.cache entries).
    pub hwcaps: Vec<String>,
    /// The default ("system") directories searched last.
    pub system_dirs: Vec<String>,
    /// The ld.so.cache file the loader reads, if it uses one.
    pub cache_file: Option<PathBuf>,
    /// The value of `$PLATFORM`.
    pub platform: Option<String>,
    /// The value of `$LIB`.
    pub lib: String,
    /// Whether the values came from running the loader (`true`) or were guessed.
    pub probed: bool,
}

impl LoaderProfile {
    /// Asks the loader itself (`ld.so --help`, `ld.so --list-diagnostics`), which is exact for the CPU
    /// this runs on. Returns `None` when the loader cannot run here (foreign architecture, missing).
    pub fn probe(interpreter: &Path) -> Option<LoaderProfile> {
        let run = |arg: &str| {
            let output = Command::new(interpreter)
                .arg(arg)
                .env_remove("LD_LIBRARY_PATH")
                .env_remove("GLIBC_TUNABLES")
                .output()
                .ok()?;
            output
                .status
                .success()
                .then(|| String::from_utf8_lossy(&output.stdout).into_owned())
        };
        let help = run("--help")?;
        let diagnostics = run("--list-diagnostics").unwrap_or_default();
        Some(Self::from_loader_output(interpreter, &help, &diagnostics))
    }

    /// Builds a profile from the text of `ld.so --help` and `ld.so --list-diagnostics` (glibc ≥ 2.33).
    pub fn from_loader_output(interpreter: &Path, help: &str, diagnostics: &str) -> LoaderProfile {
        let mut section = "";
        let mut system_dirs = Vec::new();
        let mut cache_file = None;
        let mut hwcaps = Vec::new();
        let mut legacy_platform = None;
        let mut legacy_tls = false;
        let mut legacy_hwcaps = Vec::new();
        for line in help.lines() {
            let Some(item) = line.strip_prefix("  ") else {
                section = line.trim_end_matches(':');
                continue;
            };
            let (name, note) = match item.split_once(" (") {
                Some((name, note)) => (name, note.trim_end_matches(')')),
                None => (item, ""),
            };
            let searched = note.contains("searched");
            match section {
                "Shared library search path" => {
                    if let Some(file) = item.strip_prefix("(libraries located via ") {
                        cache_file = Some(PathBuf::from(file.trim_end_matches(')')));
                    } else if note == "system search path" {
                        system_dirs.push(name.to_string());
                    }
                }
                "Subdirectories of glibc-hwcaps directories, in priority order" if searched => {
                    hwcaps.push(name.to_string());
                }
                "Legacy HWCAP subdirectories under library search path directories" if searched => {
                    if note.starts_with("AT_PLATFORM") {
                        legacy_platform = Some(name.to_string());
                    } else if name == "tls" {
                        legacy_tls = true;
                    } else {
                        legacy_hwcaps.push(name.to_string());
                    }
                }
                _ => {}
            }
        }

        let value = |key: &str| {
            diagnostics.lines().find_map(|line| {
                let rest = line.strip_prefix(key)?.strip_prefix('=')?;
                Some(rest.trim_matches('"').to_string())
            })
        };

        let mut subdirs: Vec<String> = hwcaps
            .iter()
            .map(|name| format!("glibc-hwcaps/{name}/"))
            .collect();
        // Legacy hwcaps (glibc < 2.37): every combination of `tls`, the platform and the hwcap names,
        // the fullest first, in the order the loader builds them.
        let components: Vec<&str> = legacy_tls
            .then_some("tls")
            .into_iter()
            .chain(legacy_platform.as_deref())
            .chain(legacy_hwcaps.iter().map(String::as_str))
            .collect();
        let n = components.len();
        for mask in (1..1u32 << n).rev() {
            let mut dir = String::new();
            for (i, component) in components.iter().enumerate() {
                if mask & (1 << (n - 1 - i)) != 0 {
                    dir.push_str(component);
                    dir.push('/');
                }
            }
            subdirs.push(dir);
        }
        subdirs.push(String::new());

        LoaderProfile {
            interpreter: interpreter.to_path_buf(),
            subdirs,
            hwcaps,
            system_dirs,
            cache_file,
            platform: value("dl_platform"),
            lib: value("dl_dst_lib").unwrap_or_else(|| "lib".to_string()),
            probed: true,
        }
    }

    /// A guess for a loader that cannot run here: no capability subdirectories, the usual default
    /// directories for the class, `/etc/ld.so.cache`.
    pub fn fallback(interpreter: &Path, class: Class) -> LoaderProfile {
        let lib = match class {
            Class::Elf64 => "lib64",
            Class::Elf32 => "lib",
        };
        LoaderProfile {
            interpreter: interpreter.to_path_buf(),
            subdirs: vec![String::new()],
            hwcaps: Vec::new(),
            system_dirs: vec![format!("/{lib}"), format!("/usr/{lib}")],
            cache_file: Some(PathBuf::from("/etc/ld.so.cache")),
            platform: None,
            lib: lib.to_string(),
            probed: false,
        }
    }

    /// Probes the loader, or falls back to a guess.
    pub fn for_interpreter(interpreter: &Path, class: Class) -> LoaderProfile {
        Self::probe(interpreter).unwrap_or_else(|| Self::fallback(interpreter, class))
    }
}

/// The loader a file of this machine and class uses when it names none (shared libraries).
pub fn default_interpreter(machine: u16, class: Class) -> &'static str {
    match (machine, class) {
        (62, Class::Elf64) => "/lib64/ld-linux-x86-64.so.2",
        (3, _) | (62, Class::Elf32) => "/lib/ld-linux.so.2",
        (183, _) => "/lib/ld-linux-aarch64.so.1",
        (40, _) => "/lib/ld-linux-armhf.so.3",
        (243, _) => "/lib/ld-linux-riscv64-lp64d.so.1",
        (21, _) => "/lib64/ld64.so.2",
        (22, _) => "/lib/ld64.so.1",
        _ => "/lib/ld-linux.so.2",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HELP_2_36: &str = "\
Shared library search path:
  (libraries located via /etc/ld.so.cache)
  /lib/x86_64-linux-gnu (system search path)
  /usr/lib/x86_64-linux-gnu (system search path)

Subdirectories of glibc-hwcaps directories, in priority order:
  x86-64-v4
  x86-64-v3 (supported, searched)
  x86-64-v2 (supported, searched)

Legacy HWCAP subdirectories under library search path directories:
  x86_64 (AT_PLATFORM; supported, searched)
  tls (supported, searched)
  avx512_1
  x86_64 (supported, searched)
";

    #[test]
    fn reads_search_dirs_cache_and_subdirs() {
        let diagnostics = "dl_dst_lib=\"lib/x86_64-linux-gnu\"\ndl_platform=\"x86_64\"\n";
        let profile =
            LoaderProfile::from_loader_output(Path::new("/ld.so"), HELP_2_36, diagnostics);
        assert_eq!(
            profile.system_dirs,
            ["/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu"]
        );
        assert_eq!(
            profile.cache_file.as_deref(),
            Some(Path::new("/etc/ld.so.cache"))
        );
        assert_eq!(profile.hwcaps, ["x86-64-v3", "x86-64-v2"]);
        assert_eq!(
            profile.subdirs,
            [
                "glibc-hwcaps/x86-64-v3/",
                "glibc-hwcaps/x86-64-v2/",
                "tls/x86_64/x86_64/",
                "tls/x86_64/",
                "tls/x86_64/",
                "tls/",
                "x86_64/x86_64/",
                "x86_64/",
                "x86_64/",
                "",
            ]
        );
        assert_eq!(profile.lib, "lib/x86_64-linux-gnu");
        assert_eq!(profile.platform.as_deref(), Some("x86_64"));
    }
}
