//! The real loader as an oracle: fixtures compiled with gcc, run under `strace` with `LD_DEBUG=libs`,
//! and the same program explained by `ldcache explain --json`.
//!
//! One traced run gives both truths: the loader's debug lines reach stderr through `write(2, ...)`,
//! which strace records in order with the `openat`/`stat` calls, so every failing call is attributed
//! to the `find library=` block it belongs to.

#![allow(dead_code)] // Each test binary uses a different part of this module.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// One `find library=` block of a real run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Search {
    pub soname: String,
    pub resolved: Option<String>,
    pub failed_calls: u32,
    /// The files tried, in order (the loader's `trying file=` lines).
    pub tried: Vec<String>,
    /// Where the resolved file was found, named as `explain --json` names it: `runpath`,
    /// `rpath`, `ld_library_path`, `default` (the loader's `search path=... (from RUNPATH of
    /// file ...)` and the like), `ld_so_cache` (`search cache=`).
    pub via: Option<String>,
}

/// The `via` of a search directory list, from the loader's `search path=` line.
fn source_of(line: &str) -> Option<&'static str> {
    if line.starts_with("search cache=") {
        return Some("ld_so_cache");
    }
    let line = line.strip_prefix("search path=")?;
    let source = line.rsplit_once("\t\t(").map_or(line, |(_, s)| s);
    Some(if source.contains("RUNPATH") {
        "runpath"
    } else if source.contains("RPATH") {
        "rpath"
    } else if source.contains("LD_LIBRARY_PATH") {
        "ld_library_path"
    } else {
        "default"
    })
}

/// What the real loader did.
#[derive(Debug)]
pub struct Observed {
    pub searches: Vec<Search>,
    /// Failing calls outside any search block (must be none for a fixture that does nothing).
    pub unattributed: Vec<String>,
    pub failed_total: u32,
}

/// What `ldcache explain` predicted, restricted to searches the loader really makes.
#[derive(Debug)]
pub struct Predicted {
    pub searches: Vec<Search>,
    pub failed_total: u32,
    pub json: Value,
}

/// The system's loader, which `Run::List` runs.
pub const SYSTEM_LOADER: &str = "/lib64/ld-linux-x86-64.so.2";

pub fn ldcache() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_ldcache"))
}

/// `ldcache ARGS FILE`, which must succeed, and its JSON output.
pub fn ldcache_json(args: &[&str], file: &Path) -> Value {
    let output = Command::new(ldcache())
        .args(args)
        .arg(file)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// How the real loader is made to load a program.
#[derive(Clone, Copy)]
pub enum Run {
    /// Execute it (fixtures, which do nothing).
    Execute,
    /// `ld.so --list`: load it without running it (programs of the system).
    List,
}

/// Loads `program` under strace with `LD_DEBUG=libs` and the given extra environment.
pub fn observe(program: &Path, run: Run, cwd: &Path, env: &[(&str, &str)]) -> Observed {
    let trace = tempfile::NamedTempFile::new().unwrap().into_temp_path();
    let mut command = Command::new("strace");
    command
        .args(["-f", "-s", "65536", "-o"])
        .arg(&trace)
        .args([
            "-e",
            "trace=open,openat,stat,lstat,newfstatat,statx,write,writev",
        ])
        .args(["-E", "LD_DEBUG=libs"]);
    for (key, value) in env {
        command.arg("-E").arg(format!("{key}={value}"));
    }
    if let Run::List = run {
        command.args([SYSTEM_LOADER, "--list"]);
    }
    // A program whose library is missing exits non-zero; the trace is what counts.
    command
        .arg(program)
        .current_dir(cwd)
        .env_remove("LD_LIBRARY_PATH")
        .output()
        .expect("strace runs (install strace)");
    parse_trace(&std::fs::read_to_string(&trace).expect("strace wrote its trace"))
}

/// Runs `ldcache explain --json` on `program`.
pub fn predict(program: &Path, cwd: &Path, library_path: Option<&str>) -> Predicted {
    let output = Command::new(ldcache())
        .args([
            "explain",
            "--json",
            "--library-path",
            library_path.unwrap_or(""),
        ])
        .arg(program)
        .current_dir(cwd)
        .output()
        .expect("ldcache runs");
    assert!(
        output.status.success(),
        "ldcache explain failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let json: Value = serde_json::from_slice(&output.stdout).expect("explain prints JSON");
    let mut searches = Vec::new();
    for object in json["objects"].as_array().expect("objects") {
        for needed in object["needed"].as_array().expect("needed") {
            if needed["via"] == "already_loaded" {
                continue;
            }
            // The stock loader announces every file it tries, from the cache too.
            let tried = needed["attempts"]
                .as_array()
                .expect("attempts")
                .iter()
                .map(|a| a["path"].as_str().unwrap().to_string())
                .collect();
            let resolved = needed["resolved"].as_str().map(str::to_string);
            // The loader's debug output names a directory by the list that first held it: one
            // of its own default directories stays "system search path" when a DT_RUNPATH or
            // DT_RPATH names it too.
            let system_dirs = json["loader"]["system_dirs"]
                .as_array()
                .expect("system_dirs");
            let label = |path: &str| {
                let via = needed["via"].as_str().unwrap();
                let dir = Path::new(path).parent().and_then(Path::to_str);
                let default_dir = system_dirs.iter().any(|d| d.as_str() == dir);
                if matches!(via, "runpath" | "rpath") && default_dir {
                    "default".to_string()
                } else {
                    via.to_string()
                }
            };
            searches.push(Search {
                soname: needed["soname"].as_str().unwrap().to_string(),
                via: resolved.as_deref().map(label),
                resolved,
                failed_calls: needed["failed_lookups"].as_u64().unwrap() as u32,
                tried,
            });
        }
    }
    let failed_total = json["failed_lookups"].as_u64().unwrap() as u32;
    Predicted {
        searches,
        failed_total,
        json,
    }
}

/// Asserts that prediction and observation agree exactly. A run that stops at a missing library is
/// compared up to that library.
pub fn assert_agree(
    program: &Path,
    run: Run,
    cwd: &Path,
    env: &[(&str, &str)],
) -> (Observed, Predicted) {
    let library_path = env
        .iter()
        .find(|(k, _)| *k == "LD_LIBRARY_PATH")
        .map(|(_, v)| *v);
    let observed = observe(program, run, cwd, env);
    let predicted = predict(program, cwd, library_path);
    assert!(
        observed.unattributed.is_empty(),
        "failing calls outside any search: {:?}",
        observed.unattributed
    );
    let n = observed.searches.len();
    assert!(
        n > 0 || predicted.searches.is_empty(),
        "the loader searched nothing"
    );
    assert!(
        predicted.searches.len() >= n,
        "fewer searches predicted than made:\npredicted {:#?}\nobserved {:#?}",
        predicted.searches,
        observed.searches
    );
    assert_eq!(
        predicted.searches[..n],
        observed.searches[..],
        "prediction differs from the loader"
    );
    let stopped_early = n > 0 && predicted.searches.len() > n;
    if stopped_early {
        assert_eq!(
            observed.searches[n - 1].resolved,
            None,
            "the loader stopped after a search that succeeded"
        );
    } else {
        assert_eq!(predicted.failed_total, observed.failed_total);
    }
    (observed, predicted)
}

fn parse_trace(trace: &str) -> Observed {
    let mut searches: Vec<Search> = Vec::new();
    let mut unattributed = Vec::new();
    let mut failed_total = 0;
    // Files opened in the current block, with whether `open` returned a descriptor. A candidate the
    // loader rejects after opening it (wrong class) is followed by more tries, so the file it kept
    // is the last one opened successfully among those it announced with "trying file=".
    let mut opened: Vec<(String, bool)> = Vec::new();
    // Each announced file with the source of the directory list it came from.
    let mut announced: Vec<(String, &'static str)> = Vec::new();
    let mut source: Option<&'static str> = None;
    let mut in_block = false;
    let finish = |searches: &mut Vec<Search>,
                  opened: &mut Vec<(String, bool)>,
                  announced: &mut Vec<(String, &'static str)>,
                  source: &mut Option<&'static str>| {
        if let Some(search) = searches.last_mut() {
            let kept = opened.iter().rev().find_map(|(path, ok)| {
                let how = announced.iter().find(|(tried, _)| tried == path);
                how.filter(|_| *ok).map(|(_, via)| (path.clone(), *via))
            });
            search.tried = announced.iter().map(|(path, _)| path.clone()).collect();
            search.via = kept.as_ref().map(|(_, via)| via.to_string());
            search.resolved = kept.map(|(path, _)| path);
        }
        opened.clear();
        announced.clear();
        *source = None;
    };
    // The loader's stderr, reassembled from write/writev calls: one debug line may take several.
    let mut stderr = String::new();
    for line in trace.lines() {
        let Some(call) = Call::parse(line) else {
            continue;
        };
        if call.name == "write" || call.name == "writev" {
            stderr.extend(call.strings.iter().map(String::as_str));
            while let Some(end) = stderr.find('\n') {
                let text_line: String = stderr.drain(..=end).collect();
                let text = text_line.trim_end_matches('\n');
                let text = text.split_once(":\t").map_or(text, |(_, t)| t);
                if let Some(path) = text.strip_prefix("  trying file=") {
                    announced.push((path.to_string(), source.unwrap_or("default")));
                } else if let Some(found) = source_of(text.trim_start()) {
                    source = Some(found);
                } else if let Some(rest) = text.strip_prefix("find library=") {
                    if in_block {
                        finish(&mut searches, &mut opened, &mut announced, &mut source);
                    }
                    in_block = true;
                    let soname = rest.split(" [").next().unwrap().to_string();
                    searches.push(Search {
                        soname,
                        resolved: None,
                        failed_calls: 0,
                        tried: Vec::new(),
                        via: None,
                    });
                } else if text.starts_with("calling init") || text.contains("error while loading") {
                    if in_block {
                        finish(&mut searches, &mut opened, &mut announced, &mut source);
                        if text.contains("error while loading") {
                            let search = searches.last_mut().unwrap();
                            (search.resolved, search.via) = (None, None);
                        }
                    }
                    in_block = false;
                }
            }
            continue;
        }
        let Some(path) = call.strings.first() else {
            continue;
        };
        let failed = call.result.starts_with("-1");
        if call.name.starts_with("open") && in_block {
            opened.push((path.clone(), !failed));
        }
        if failed {
            failed_total += 1;
            match searches.last_mut() {
                Some(search) if in_block => search.failed_calls += 1,
                _ => unattributed.push(line.to_string()),
            }
        }
    }
    if in_block {
        finish(&mut searches, &mut opened, &mut announced, &mut source);
    }
    Observed {
        searches,
        unattributed,
        failed_total,
    }
}

/// One strace line: the call, its string arguments (unescaped, in order), its result.
struct Call {
    name: String,
    strings: Vec<String>,
    result: String,
}

impl Call {
    fn parse(line: &str) -> Option<Call> {
        // "PID name(args) = result" or "name(args) = result".
        let line = match line.split_once(' ') {
            Some((pid, rest)) if pid.chars().all(|c| c.is_ascii_digit()) => rest.trim_start(),
            _ => line,
        };
        let open = line.find('(')?;
        let name = line[..open].to_string();
        // Of writes, only the loader's stderr matters (`ld.so --list` prints its answer on stdout).
        if name.starts_with("write") && !line[open + 1..].starts_with("2,") {
            return None;
        }
        let mut strings = Vec::new();
        let mut rest = &line[open..];
        while let Some(quote) = rest.find('"') {
            let (string, after) = unescape(&rest[quote + 1..])?;
            strings.push(string);
            rest = after;
        }
        let result = rest.rsplit_once(") = ")?.1.to_string();
        Some(Call {
            name,
            strings,
            result,
        })
    }
}

/// Reads a C-escaped string up to its closing quote; returns it and the text after the quote.
fn unescape(s: &str) -> Option<(String, &str)> {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => return Some((String::from_utf8_lossy(&out).into_owned(), &s[i + 1..])),
            b'\\' => {
                i += 1;
                match *bytes.get(i)? {
                    b'n' => out.push(b'\n'),
                    b't' => out.push(b'\t'),
                    b'r' => out.push(b'\r'),
                    b'v' => out.push(0x0b),
                    b'f' => out.push(0x0c),
                    b'x' => {
                        let hex = s.get(i + 1..i + 3)?;
                        out.push(u8::from_str_radix(hex, 16).ok()?);
                        i += 2;
                    }
                    d @ b'0'..=b'7' => {
                        let mut value = u32::from(d - b'0');
                        while i + 1 < bytes.len()
                            && (b'0'..=b'7').contains(&bytes[i + 1])
                            && value < 32
                        {
                            i += 1;
                            value = value * 8 + u32::from(bytes[i] - b'0');
                        }
                        out.push(value as u8);
                    }
                    other => out.push(other),
                }
            }
            other => out.push(other),
        }
        i += 1;
    }
    None
}

/// Builds fixture libraries and programs with gcc in a temporary tree.
pub struct Fixture {
    pub root: tempfile::TempDir,
}

impl Fixture {
    pub fn new() -> Fixture {
        Fixture {
            root: tempfile::Builder::new()
                .prefix("ldcache-fixture")
                .tempdir()
                .unwrap(),
        }
    }

    pub fn path(&self, relative: &str) -> PathBuf {
        self.root.path().join(relative)
    }

    /// Compiles `lib<name>.so` into `dir` (relative to the root); it defines `int <name>(void)` and
    /// calls the functions of the libraries it needs (`needs`: (name, dir) pairs, already built).
    pub fn library(
        &self,
        dir: &str,
        name: &str,
        needs: &[(&str, &str)],
        link: &[String],
    ) -> PathBuf {
        self.library_with(dir, name, needs, link, &[])
    }

    /// Like [`Fixture::library`] with extra compiler flags (e.g. `-m32`).
    pub fn library_with(
        &self,
        dir: &str,
        name: &str,
        needs: &[(&str, &str)],
        link: &[String],
        flags: &[&str],
    ) -> PathBuf {
        let out_dir = self.path(dir);
        std::fs::create_dir_all(&out_dir).unwrap();
        let source = out_dir.join(format!("{name}.c"));
        std::fs::write(&source, c_source(name, needs, false)).unwrap();
        let output = out_dir.join(format!("lib{name}.so"));
        let mut command = Command::new("gcc");
        command
            .args(flags)
            .args(["-shared", "-fPIC", "-Wl,--no-as-needed", "-o"])
            .arg(&output)
            .arg(&source);
        self.add_needs(&mut command, needs);
        command.args(link);
        run(&mut command);
        std::fs::remove_file(&source).unwrap();
        output
    }

    /// Compiles a program that calls every library in `needs`.
    pub fn program(&self, name: &str, needs: &[(&str, &str)], link: &[String]) -> PathBuf {
        self.program_with(name, needs, link, "")
    }

    /// Like [`Fixture::program`] with extra C source (e.g. notes written in assembly).
    pub fn program_with(
        &self,
        name: &str,
        needs: &[(&str, &str)],
        link: &[String],
        extra: &str,
    ) -> PathBuf {
        let source = self.path(&format!("{name}.c"));
        std::fs::create_dir_all(source.parent().unwrap()).unwrap();
        std::fs::write(&source, c_source(name, needs, true) + extra).unwrap();
        let output = self.path(name);
        let mut command = Command::new("gcc");
        command
            .args(["-Wl,--no-as-needed", "-o"])
            .arg(&output)
            .arg(&source);
        self.add_needs(&mut command, needs);
        command.args(link);
        run(&mut command);
        output
    }

    fn add_needs(&self, command: &mut Command, needs: &[(&str, &str)]) {
        for (name, dir) in needs {
            command.arg(format!("-L{}", self.path(dir).display()));
            command.arg(format!("-l{name}"));
        }
    }
}

fn c_source(name: &str, needs: &[(&str, &str)], is_program: bool) -> String {
    let mut source = String::new();
    for (need, _) in needs {
        source.push_str(&format!("int {need}(void);\n"));
    }
    let calls: String = needs
        .iter()
        .map(|(need, _)| format!(" + {need}()"))
        .collect();
    if is_program {
        source.push_str(&format!("int main(void) {{ return (0{calls}) == -1; }}\n"));
    } else {
        source.push_str(&format!("int {name}(void) {{ return 1{calls}; }}\n"));
    }
    source
}

fn run(command: &mut Command) {
    let output = command.output().expect("the compiler runs");
    assert!(
        output.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// `-Wl,-rpath,<dirs>` with new (`DT_RUNPATH`) or old (`DT_RPATH`) tags.
pub fn search_path(dirs: &[String], runpath: bool) -> Vec<String> {
    vec![
        if runpath {
            "-Wl,--enable-new-dtags".to_string()
        } else {
            "-Wl,--disable-new-dtags".to_string()
        },
        format!("-Wl,-rpath,{}", dirs.join(":")),
    ]
}

/// C source placing ELF notes of owner `NixOS` (type, descriptor) in an allocated note section, so the
/// linker covers them with a PT_NOTE.
pub fn nixos_notes_source(notes: &[(u32, &[u8])]) -> String {
    // Assembly inside a C string literal: `\n` and `\"` are C escapes.
    let mut asm = String::from(r#".section .note.nixos.ldcache,\"a\",@note\n"#);
    for (n_type, desc) in notes {
        asm.push_str(&format!(
            r".balign 4\n.long 6\n.long {}\n.long {n_type:#x}\n",
            desc.len()
        ));
        asm.push_str(r".byte 78,105,120,79,83,0\n.balign 4\n");
        if !desc.is_empty() {
            let bytes: Vec<String> = desc.iter().map(u8::to_string).collect();
            asm.push_str(&format!(r".byte {}\n", bytes.join(",")));
        }
        asm.push_str(r".balign 4\n");
    }
    asm.push_str(r".previous\n");
    format!("__asm__(\"{asm}\");\n")
}
