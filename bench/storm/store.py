#!/usr/bin/python3
"""The Nix-like stores of the storm benchmark (stdlib only; patchelf does the ELF edits).

  store.py layout CLOSURE.json DEBDIR STORE SHRINK MANIFEST PATCHELF GLIBC_LIBDIR
      Unpack every package of the closure into STORE/<hash>-<name>, give every dynamically linked
      x86-64 ELF file a DT_RUNPATH (its package's lib dirs, then those of the package's
      dependencies in BFS order, then the glibc store directory) and a PT_INTERP in the glibc
      store directory; copy those files to SHRINK and run `patchelf --shrink-rpath` on the
      copies. STORE's path is the placeholder every run later rewrites: a scenario store is
      STORE's tree with that prefix replaced, byte for byte, by its own of the same length.
  store.py instantiate MANIFEST BASE VARIANT DEST GLIBC_LIBDIR [--loader FILE]
      A scenario store at DEST (VARIANT full or shrink): ELF files copied with the prefix
      rewritten, every other file hard-linked to the cached base; the glibc store directory
      filled from GLIBC_LIBDIR (its loader replaced by FILE).
  store.py command MANIFEST STORE NAME
      The path (relative to STORE) of the executable NAME names: usr/bin/NAME (or bin, sbin,
      usr/sbin, usr/games) of the closure's packages in BFS order, else the one file in those
      directories of the first package that has any named NAME-* or NAME.* (Debian alternatives
      such as convert -> convert-im6.q16, emacs -> emacs-nox), else NAME as a path inside a
      package directory.
  store.py dirs MANIFEST
      "PACKAGE STORE-DIRECTORY-NAME" lines.
  store.py glibc-dir
      The glibc store directory's lib directory, relative to the store.
  store.py glibc STORE GLIBC_LIBDIR
      Refill STORE's glibc store directory from GLIBC_LIBDIR.
  store.py dynamic-files STORE
      Every dynamically linked x86-64 ELF file under STORE, NUL-terminated.
"""

import concurrent.futures
import json
import os
import shutil
import stat
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import elfinfo  # noqa: E402
from elfinfo import corpus  # noqa: E402  (the corpus suite's module, on the path elfinfo set)

GLIBC_NAME = "glibc-2.43"
LOADER = "ld-linux-x86-64.so.2"
is_library_name = corpus.is_library_name
BIN_DIRS = ("usr/bin", "bin", "usr/sbin", "sbin", "usr/games")
JOBS = os.cpu_count() or 2


def log(msg):
    print(f"storm: {msg}", file=sys.stderr, flush=True)


def store_name(name, version=""):
    """<32 characters of Nix's base-32 alphabet>-<name>, the hash covering name and version."""
    return corpus.store_hash(f"ldcache-storm:{name}={version}") + "-" + name


def glibc_dir():
    return f"{store_name(GLIBC_NAME)}/lib"


def parallel(function, items):
    with concurrent.futures.ThreadPoolExecutor(JOBS) as pool:
        return list(pool.map(function, items))


def run(argv):
    p = subprocess.run(argv, capture_output=True, text=True)
    if p.returncode != 0:
        raise SystemExit(f"storm: {' '.join(argv[:3])} ... failed: {p.stderr.strip()[:500]}")


# ---------------------------------------------------------------------------------------------
# layout

def unpack(closure, debdir, store):
    """dpkg-deb -x every package into its store directory; returns {package: directory name}."""
    dirs = {}
    for name in closure["order"]:
        pkg = closure["packages"][name]
        dirs[name] = store_name(name, pkg["version"] + ":" + pkg["arch"])

    def one(name):
        dest = os.path.join(store, dirs[name])
        run(["dpkg-deb", "-x", os.path.join(debdir, closure["packages"][name]["deb"]), dest])
        for path in elfinfo.walk_files(dest):  # no setuid/setgid copies lying around
            st = os.lstat(path)
            if stat.S_ISREG(st.st_mode) and st.st_mode & 0o6000:
                os.chmod(path, stat.S_IMODE(st.st_mode) & ~0o6000)

    parallel(one, closure["order"])
    return dirs


def fill_glibc(store, libdir, loader=None):
    """The glibc store directory: the shared objects (and their links) of a glibc install."""
    dest = os.path.join(store, glibc_dir())
    os.makedirs(dest, exist_ok=True)
    for name in sorted(os.listdir(libdir)):
        source = os.path.join(libdir, name)
        if not is_library_name(name):
            continue
        if os.path.islink(source):
            os.symlink(os.readlink(source), os.path.join(dest, name))
        elif elfinfo.is_elf(source):
            shutil.copy2(loader if name == LOADER and loader else source, os.path.join(dest, name))


def scan(store, dirs):
    """Every ELF file of every package: {rel path: facts}, hard links grouped by "link_of"."""
    files, inodes = {}, {}
    for name, directory in dirs.items():
        for path in elfinfo.walk_files(os.path.join(store, directory)):
            st = os.lstat(path)
            if not stat.S_ISREG(st.st_mode) or not elfinfo.is_elf(path):
                continue
            rel = os.path.relpath(path, store)
            facts = elfinfo.read(path) or {"dynamic": False, "foreign": True}
            facts["package"] = name
            first = inodes.setdefault((st.st_dev, st.st_ino), rel)
            if first != rel:
                facts["link_of"] = first
            files[rel] = facts
    return files


def lib_dirs(files, dirs):
    """{package: [its directories holding shared libraries]}, shallowest first.

    A shared library is an ELF shared object named lib*.so*: what `-lNAME` could find, so what
    Nix's linker wrapper turns into a RUNPATH entry. Directories of plugins only (Perl XS
    modules, ImageMagick coders) are left out, as -L/-rpath flags never name them in Nix."""
    found = {name: set() for name in dirs}
    for rel, facts in files.items():
        name = os.path.basename(rel)
        if facts.get("type") == elfinfo.ET_DYN and name.startswith("lib") and \
                is_library_name(name):
            found[facts["package"]].add(os.path.dirname(rel))
    return {name: sorted(d, key=lambda p: (p.count("/"), p)) for name, d in found.items()}


def bfs(closure, start):
    order, queue = [start], [start]
    while queue:
        name = queue.pop(0)
        for dep in closure["packages"][name]["deps"]:
            if dep not in order:
                order.append(dep)
                queue.append(dep)
    return order


def runpaths(closure, store, libdirs):
    """{package: DT_RUNPATH string} as Nix's linker wrapper would give its files."""
    result = {}
    for name in closure["order"]:
        entries = [os.path.join(store, d) for p in bfs(closure, name) for d in libdirs[p]]
        result[name] = ":".join(dict.fromkeys(entries)) + ":" + os.path.join(store, glibc_dir())
    return result


def dynamic_files(files):
    """The files patchelf edits: dynamically linked x86-64 ELF files, one name per inode."""
    return sorted(rel for rel, f in files.items() if f.get("dynamic") and "link_of" not in f)


def set_runpaths(store, files, rpath_of, patchelf):
    interp = os.path.join(store, glibc_dir(), LOADER)

    def one(rel):
        argv = [patchelf, "--set-rpath", rpath_of[files[rel]["package"]]]
        if files[rel]["interp"]:
            argv += ["--set-interpreter", interp]
        run(argv + [os.path.join(store, rel)])

    parallel(one, dynamic_files(files))


def shrink_copies(store, shrink, files, patchelf):
    def one(rel):
        dest = os.path.join(shrink, rel)
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        shutil.copy2(os.path.join(store, rel), dest)
        run([patchelf, "--shrink-rpath", dest])

    parallel(one, dynamic_files(files))


def refresh(files, root, rels, key):
    """Record the run path each of RELS has under ROOT as files[rel][KEY]."""
    for rel in rels:
        files[rel][key] = (elfinfo.read(os.path.join(root, rel)) or {}).get("runpath")


def layout(closure_path, debdir, store, shrink, manifest_path, patchelf, glibc_libdir):
    with open(closure_path) as f:
        closure = json.load(f)
    os.makedirs(store)
    dirs = unpack(closure, debdir, store)
    log(f"unpacked {len(dirs)} packages")
    fill_glibc(store, glibc_libdir)  # for --shrink-rpath to find libc.so.6 and friends
    files = scan(store, dirs)
    libdirs = lib_dirs(files, dirs)
    rpath_of = runpaths(closure, store, libdirs)
    dynamic = dynamic_files(files)
    log(f"{len(files)} ELF files, {len(dynamic)} to patch; setting RUNPATH and PT_INTERP")
    set_runpaths(store, files, rpath_of, patchelf)
    refresh(files, store, dynamic, "runpath")
    log("patchelf --shrink-rpath on copies")
    shrink_copies(store, shrink, files, patchelf)
    refresh(files, shrink, dynamic, "runpath_shrunk")
    shutil.rmtree(os.path.join(store, os.path.dirname(glibc_dir())))
    manifest = {"placeholder": store, "glibc_dir": glibc_dir(), "closure": closure,
                "dirs": dirs, "lib_dirs": libdirs, "files": files}
    with open(manifest_path, "w") as f:
        json.dump(manifest, f, indent=0, sort_keys=True)


# ---------------------------------------------------------------------------------------------
# instantiate

def link_or_copy(source, dest):
    try:
        os.link(source, dest)
    except OSError:
        shutil.copy2(source, dest)


def rewrite_copy(source, dest, old, new):
    """Copy SOURCE to DEST with every occurrence of OLD replaced by NEW (same length)."""
    with open(source, "rb") as f:
        data = f.read()
    with open(dest, "wb") as f:
        f.write(data.replace(old, new))
    shutil.copystat(source, dest)


def instantiate(manifest_path, base, variant, dest, glibc_libdir, loader):
    with open(manifest_path) as f:
        manifest = json.load(f)
    old, new = manifest["placeholder"].encode(), dest.encode()
    if len(old) != len(new):
        raise SystemExit(f"storm: store path {dest} is not as long as {manifest['placeholder']}")
    files = manifest["files"]
    source_root = os.path.join(base, "shrink" if variant == "shrink" else "store")
    os.makedirs(dest)
    for dirpath, dirnames, filenames in os.walk(os.path.join(base, "store")):
        rel_dir = os.path.relpath(dirpath, os.path.join(base, "store"))
        target_dir = os.path.normpath(os.path.join(dest, rel_dir))
        for d in dirnames:
            if os.path.islink(os.path.join(dirpath, d)):
                os.symlink(os.readlink(os.path.join(dirpath, d)), os.path.join(target_dir, d))
            else:
                os.mkdir(os.path.join(target_dir, d))
        for name in filenames:
            source = os.path.join(dirpath, name)
            rel = os.path.normpath(os.path.join(rel_dir, name))
            target = os.path.join(target_dir, name)
            if os.path.islink(source):
                os.symlink(os.readlink(source), target)
            elif rel not in files:
                link_or_copy(source, target)  # never written by any scenario
            elif "link_of" in files[rel]:
                continue  # linked below, once its first name exists
            elif files[rel].get("dynamic"):
                rewrite_copy(os.path.join(source_root, rel), target, old, new)
            else:
                shutil.copy2(source, target)  # ELF, but not for us: a private copy all the same
    for rel, facts in files.items():
        if "link_of" in facts:
            os.link(os.path.join(dest, facts["link_of"]), os.path.join(dest, rel))
    fill_glibc(dest, glibc_libdir, loader)


# ---------------------------------------------------------------------------------------------
# command

def resolve_in_store(manifest, store, package, path):
    """PATH (absolute inside a package) with its symbolic links followed within the store."""
    dirs = manifest["dirs"]
    for _ in range(40):
        full = os.path.join(store, dirs[package], path.lstrip("/"))
        if os.path.islink(full):
            target = os.readlink(full)
            path = target if target.startswith("/") else os.path.normpath(
                os.path.join(os.path.dirname("/" + path.lstrip("/")), target))
            continue
        return full if os.path.isfile(full) else None
    return None


def find_command(manifest, store, name):
    order, dirs = manifest["closure"]["order"], manifest["dirs"]
    for package in order:
        for bindir in BIN_DIRS:
            hit = resolve_in_store(manifest, store, package, f"{bindir}/{name}")
            if hit:
                return os.path.relpath(hit, store)
    for package in order:
        hits = [f"{bindir}/{entry}" for bindir in BIN_DIRS
                if os.path.isdir(os.path.join(store, dirs[package], bindir))
                for entry in sorted(os.listdir(os.path.join(store, dirs[package], bindir)))
                if entry.startswith((name + "-", name + "."))]
        hits = [h for h in (resolve_in_store(manifest, store, package, h) for h in hits) if h]
        if len(set(hits)) == 1:
            return os.path.relpath(hits[0], store)
        if hits:
            raise SystemExit(f"storm: {name!r} is ambiguous in {package}: "
                             + ", ".join(sorted(os.path.relpath(h, store) for h in set(hits))))
    for package in order:
        hit = resolve_in_store(manifest, store, package, name)
        if hit:
            return os.path.relpath(hit, store)
    raise SystemExit(f"storm: no command {name!r} in the closure of {order[0]}")


def main(argv):
    command = argv[1] if len(argv) > 1 else ""
    if command == "layout" and len(argv) == 9:
        layout(*argv[2:])
    elif command == "instantiate" and len(argv) in (7, 9):
        loader = argv[8] if len(argv) == 9 and argv[7] == "--loader" else None
        instantiate(*argv[2:7], loader)
    elif command == "dynamic-files" and len(argv) == 3:
        for path in elfinfo.walk_files(argv[2]):
            if not os.path.islink(path) and elfinfo.is_elf(path) and \
                    (elfinfo.read(path) or {}).get("dynamic"):
                sys.stdout.write(path + "\0")
    elif command == "glibc" and len(argv) == 4:
        shutil.rmtree(os.path.join(argv[2], glibc_dir()))
        fill_glibc(argv[2], argv[3])
    elif command == "glibc-dir" and len(argv) == 2:
        print(glibc_dir())
    elif command == "dirs" and len(argv) == 3:
        with open(argv[2]) as f:
            for name, directory in sorted(json.load(f)["dirs"].items()):
                print(name, directory)
    elif command == "command" and len(argv) == 5:
        with open(argv[2]) as f:
            rel = find_command(json.load(f), argv[3], argv[4])
        if not (elfinfo.read(os.path.join(argv[3], rel)) or {}).get("interp"):
            raise SystemExit(f"storm: {rel} is not a dynamically linked x86-64 executable")
        print(rel)
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
