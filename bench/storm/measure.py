#!/usr/bin/python3
"""Measurements of the storm benchmark; each prints one JSON value (stdlib only).

  measure.py trace MANIFEST STORE TRACE_PREFIX DEFAULT_DIR...
      Counts from `strace -ff -o TRACE_PREFIX` (every syscall, every process): syscalls, mmap
      calls (all, and those mapping a file), failing open/stat calls (open, openat, openat2, stat, lstat, newfstatat, statx), and
      of those the library-resolution lookups: a path whose basename is a needed soname of the
      store, a search directory (a lib dir of the store, the glibc store directory, the loader's
      DEFAULT_DIRs) or a glibc-hwcaps subdirectory of one, or a lib*.so* file in one of those.
  measure.py startup MANIFEST STORE TRACE_PREFIX EXE DEFAULT_DIR...
      The failing resolution lookups of EXE's process before the loader's first `calling init`
      (LD_DEBUG=libs output seen as writev calls in the trace): what `ldcache explain` models.
  measure.py predict LDCACHE CACHE LOADER STORE EXE
      `ldcache explain --json` 's failed_lookups (the process total at start-up) and the objects
      it loads (relative to STORE).
  measure.py audit LDCACHE STORE
      `ldcache audit --json` 's totals over every program and library of STORE.
  measure.py sizes MANIFEST BEFORE AFTER
      Growth of the ELF files of store AFTER against store BEFORE (the same files with another
      store prefix of the same length), the files carrying a note, those given a PT_LOAD.
  measure.py verify LDCACHE MANIFEST BEFORE AFTER SCRATCH
      `ldcache verify` on every changed ELF file (AFTER's prefix rewritten to BEFORE's first).
  measure.py instructions CALLGRIND_OUT
      User-space instructions of a callgrind run: the whole run, and (inclusive) the loader's
      `_dl_start` (its start-up, before the first initialiser) and `_dl_map_object_deps` (the
      search and mapping of the dependencies).
  measure.py loader-functions CALLGRIND_OUT
      {"total": the whole run, "functions": {name: inclusive instructions}} for every function
      of the loader (bench/floor-profile.sh).
"""

import glob
import json
import os
import re
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import elfinfo  # noqa: E402
import store as storelib  # noqa: E402

OPEN_STAT = {"open", "openat", "openat2", "stat", "lstat", "newfstatat", "statx"}
SYSCALL = re.compile(r'^([a-z_0-9]+)\((.*)\) += (-?\d+|0x[0-9a-f]+|\?)')
FIRST_STRING = re.compile(r'"((?:[^"\\]|\\.)*)"')
HWCAPS = ("glibc-hwcaps/x86-64-v4", "glibc-hwcaps/x86-64-v3", "glibc-hwcaps/x86-64-v2",
          "glibc-hwcaps")
INIT_MARKS = ("calling init: ", "initialize program: ", "transferring control: ")


def load(path):
    with open(path) as f:
        return json.load(f)


class Lookups:
    """Tells library-resolution lookups from other failing calls."""

    def __init__(self, manifest, store, default_dirs):
        self.sonames = {n for f in manifest["files"].values() for n in f.get("needed", [])}
        self.sonames |= {"libc.so.6", "libm.so.6", "libpthread.so.0", "libdl.so.2", "librt.so.1"}
        dirs = [os.path.join(store, d) for ds in manifest["lib_dirs"].values() for d in ds]
        dirs += [os.path.join(store, manifest["glibc_dir"])] + list(default_dirs)
        self.dirs = set(dirs) | {os.path.join(d, h) for d in dirs for h in HWCAPS}

    def is_resolution(self, path):
        path = path.rstrip("/")
        name = os.path.basename(path)
        if name in self.sonames or path in self.dirs:
            return True
        return os.path.dirname(path) in self.dirs and name.startswith("lib") and \
            storelib.is_library_name(name)


def calls(trace_file):
    """(name, args, result) of every syscall line of one strace -ff file."""
    with open(trace_file, errors="replace") as f:
        for line in f:
            m = SYSCALL.match(line)
            if m:
                yield m.group(1), m.group(2), m.group(3)


def failing_path(name, args, result):
    if name not in OPEN_STAT or not result.startswith("-"):
        return None
    m = FIRST_STRING.search(args)
    return m.group(1).encode().decode("unicode_escape") if m else None


def trace(manifest_path, store, prefix, *default_dirs):
    lookups = Lookups(load(manifest_path), store, default_dirs)
    counts = {"syscalls": 0, "mmap": 0, "mmap_file": 0, "failing": 0, "failing_resolution": 0,
              "processes": 0}
    for trace_file in glob.glob(prefix + ".*"):
        counts["processes"] += 1
        for name, args, result in calls(trace_file):
            counts["syscalls"] += 1
            counts["mmap"] += name == "mmap"
            counts["mmap_file"] += name == "mmap" and maps_a_file(args)
            path = failing_path(name, args, result)
            if path is not None:
                counts["failing"] += 1
                counts["failing_resolution"] += lookups.is_resolution(path)
    print(json.dumps(counts))


def maps_a_file(args):
    """Whether mmap's arguments name a file descriptor (segments of a library, a data file)
    rather than -1 (anonymous memory: the loader's and malloc's allocations)."""
    fields = args.split(", ")
    return len(fields) == 6 and fields[4].lstrip("-").isdigit() and int(fields[4]) >= 0


def main_process(prefix, exe):
    """The trace file of the process that first executed EXE (lowest pid among them)."""
    found = []
    for trace_file in glob.glob(prefix + ".*"):
        first = next(calls(trace_file), None)
        if first and first[0] == "execve" and f'"{exe}"' in first[1]:
            found.append((int(trace_file.rsplit(".", 1)[1]), trace_file))
    if not found:
        raise SystemExit(f"storm: no trace of {exe} under {prefix}")
    return min(found)[1]


def startup(manifest_path, store, prefix, exe, *default_dirs):
    lookups = Lookups(load(manifest_path), store, default_dirs)
    count, reached_init = 0, False
    for name, args, result in calls(main_process(prefix, exe)):
        if name in ("write", "writev") and any(mark in args for mark in INIT_MARKS):
            reached_init = True
            break
        path = failing_path(name, args, result)
        count += path is not None and lookups.is_resolution(path)
    print(json.dumps({"failing_resolution": count, "reached_init": reached_init}))


def predict(ldcache, cache, loader, store, exe):
    p = subprocess.run([ldcache, "explain", "--json", "--library-path", "", "--cache", cache,
                        "--loader", loader, "--store-dir", store, exe],
                       capture_output=True, text=True)
    if p.returncode != 0:
        print(json.dumps({"error": p.stderr.strip()[:300]}))
        return
    result = json.loads(p.stdout)
    print(json.dumps({"failed_lookups": result["failed_lookups"],
                      "objects": [os.path.relpath(os.path.realpath(o["path"]), store)
                                  for o in result["objects"]]}))


def audit(ldcache, store):
    p = subprocess.run([ldcache, "audit", "--json", "--store-dir", store, store],
                       capture_output=True, text=True)
    if p.returncode != 0:
        print(json.dumps({"error": p.stderr.strip()[:300]}))
        return
    result = json.loads(p.stdout)
    print(json.dumps(dict(result["total"], files=len(result["files"]))))


def elf_files(manifest):
    """The ELF files of the packages, one name per inode (the glibc directory left out)."""
    return sorted(rel for rel, f in manifest["files"].items() if "link_of" not in f)


def normalized(path, before, after):
    with open(path, "rb") as f:
        return f.read().replace(after.encode(), before.encode())


def changed_files(manifest, before, after):
    """[(rel, size before, size after, PT_LOADs before, after)] of the files that differ."""
    result = []
    for rel in elf_files(manifest):
        a, b = os.path.join(before, rel), os.path.join(after, rel)
        with open(a, "rb") as f:
            old = f.read()
        if old == normalized(b, before, after):
            continue
        loads = [(elfinfo.read(p) or {}).get("loads", 0) for p in (a, b)]
        result.append((rel, len(old), os.path.getsize(b), *loads))
    return result


def with_note(manifest, root):
    return sum(1 for rel in elf_files(manifest)
               if (elfinfo.read(os.path.join(root, rel)) or {}).get("nixos_note"))


def sizes(manifest_path, before, after):
    manifest = load(manifest_path)
    changed = changed_files(manifest, before, after)
    growth = sorted(new - old for _, old, new, _, _ in changed)
    total_before = sum(os.path.getsize(os.path.join(before, rel)) for rel in elf_files(manifest))
    print(json.dumps({
        "files": len(elf_files(manifest)), "changed": len(changed),
        "with_note": with_note(manifest, after),
        "total_before": total_before, "total_growth": sum(growth),
        "median": statistics.median(growth) if growth else 0, "max": growth[-1] if growth else 0,
        "extra_load": sum(1 for *_, la, lb in changed if lb > la),
        "extra_load_files": [rel for rel, _, _, la, lb in changed if lb > la][:50]}))


def verify(ldcache, manifest_path, before, after, scratch):
    failures = []
    for rel, *_ in changed_files(load(manifest_path), before, after):
        with open(scratch, "wb") as f:
            f.write(normalized(os.path.join(after, rel), before, after))
        p = subprocess.run([ldcache, "verify", os.path.join(before, rel), scratch],
                           capture_output=True, text=True)
        if p.returncode != 0:
            failures.append(f"{rel}: {(p.stdout + p.stderr).strip()[:200]}")
    if os.path.exists(scratch):
        os.unlink(scratch)
    print(json.dumps({"failures": len(failures), "examples": failures[:5]}))


ANNOTATED = re.compile(r"\s*([\d,]+) \(\s*[\d.]+%\)\s+(\S+?):(\S+)(?: \[(.*)\])?\s*$")


def loader_counts(callgrind_out):
    """(instructions of the whole run, {loader function: inclusive instructions})."""
    text = subprocess.run(["callgrind_annotate", "--auto=no", "--inclusive=yes", "--threshold=100",
                           callgrind_out],
                          capture_output=True, text=True, check=True).stdout
    total, counts = None, {}
    for line in text.splitlines():
        if "PROGRAM TOTALS" in line:
            total = int(line.split()[0].replace(",", ""))
        m = ANNOTATED.match(line)
        # The loader's own functions: by the object's name, or its sources when they are known.
        if m and ("ld-linux" in (m.group(4) or "") or "/glibc/" in m.group(2)):
            counts[m.group(3)] = counts.get(m.group(3), 0) + int(m.group(1).replace(",", ""))
    return total, counts


def loader_functions(callgrind_out):
    total, counts = loader_counts(callgrind_out)
    print(json.dumps({"total": total, "functions": counts}))


LOADER_FUNCTIONS = {"_dl_start": "startup", "_dl_map_object_deps": "map_deps"}


def instructions(callgrind_out):
    total, counts = loader_counts(callgrind_out)
    out = {"total": total}
    out.update({key: counts[name] for name, key in LOADER_FUNCTIONS.items() if name in counts})
    print(json.dumps(out))


def main(argv):
    functions = {"trace": (trace, 3), "startup": (startup, 4), "predict": (predict, 5),
                 "audit": (audit, 2), "sizes": (sizes, 3), "verify": (verify, 5),
                 "instructions": (instructions, 1), "loader-functions": (loader_functions, 1)}
    command, args = (argv[1], argv[2:]) if len(argv) > 1 else ("", [])
    if command not in functions or len(args) < functions[command][1] or (
            command not in ("trace", "startup") and len(args) != functions[command][1]):
        raise SystemExit(__doc__)
    functions[command][0](*args)


if __name__ == "__main__":
    main(sys.argv)
