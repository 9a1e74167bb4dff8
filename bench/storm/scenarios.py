#!/usr/bin/python3
"""The store edits of scenarios 4 and 5 (stdlib only; patchelf does the ELF edits).

  scenarios.py shrinkwrap MANIFEST STORE PATCHELF
      Scenario 4: every DT_NEEDED of every patched file becomes the absolute path the stock
      loader finds it at through the file's DT_RUNPATH (`patchelf --replace-needed`).
  scenarios.py flatten MANIFEST STORE PATCHELF LDCONFIG CACHE
      Scenario 5: no DT_RUNPATH anywhere; every shared library hard-linked into the glibc store
      directory (one directory, as on a classic distribution); CACHE made by glibc's ldconfig.
  scenarios.py patch-loader LOADER OUT OLD NEW
      A copy of LOADER reading its ld.so.cache from NEW instead of OLD: the NUL-terminated
      string OLD, baked in at build time, replaced by NEW and NUL padding (NEW not longer).
"""

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import elfinfo  # noqa: E402
import store as storelib  # noqa: E402


def load(manifest_path):
    with open(manifest_path) as f:
        return json.load(f)


def patched_files(manifest, store):
    return [os.path.join(store, rel) for rel in storelib.dynamic_files(manifest["files"])]


def resolve(soname, runpath):
    """Where the stock loader finds SONAME through RUNPATH (its first directory holding an
    x86-64 ELF file of that name), or None. The store has no glibc-hwcaps subdirectories
    (checked by the caller), so the plain directories are the whole walk."""
    for directory in (runpath or "").split(":"):
        candidate = os.path.join(directory, soname)
        if os.path.isfile(candidate) and elfinfo.read(candidate):
            return candidate
    return None


def shrinkwrap(manifest_path, store, patchelf):
    manifest = load(manifest_path)
    hwcaps = [d for d, _, _ in os.walk(store) if os.path.basename(d) == "glibc-hwcaps"]
    if hwcaps:
        raise SystemExit(f"storm: shrinkwrap does not model glibc-hwcaps ({hwcaps[0]})")
    # Resolve everything first: patching a library while another file's resolution reads it
    # would race.
    plans, unresolved = [], []
    for path in patched_files(manifest, store):
        facts = elfinfo.read(path)
        argv = [patchelf]
        for soname in facts["needed"]:
            target = resolve(soname, facts["runpath"]) if "/" not in soname else soname
            if target is None:
                unresolved.append(f"{os.path.relpath(path, store)}: {soname}")
            elif target != soname:
                argv += ["--replace-needed", soname, target]
        if len(argv) > 1:
            plans.append(argv + [path])
    storelib.parallel(storelib.run, plans)
    for line in unresolved:
        print(f"storm: shrinkwrap: not on the RUNPATH, left as is: {line}", file=sys.stderr)


def flatten(manifest_path, store, patchelf, ldconfig, cache):
    manifest = load(manifest_path)
    storelib.parallel(lambda path: storelib.run([patchelf, "--remove-rpath", path]),
                      patched_files(manifest, store))
    flat = os.path.join(store, manifest["glibc_dir"])
    duplicates = link_libraries(manifest, store, flat)
    conf = cache + ".conf"
    with open(conf, "w") as f:
        f.write(flat + "\n")
    storelib.run([ldconfig, "-X", "-C", cache, "-f", conf])
    print(f"storm: flatten: {len(os.listdir(flat))} entries in {flat}; {len(duplicates)} names "
          f"provided twice, the first package in BFS order kept: {' '.join(duplicates[:8])}",
          file=sys.stderr)


def link_libraries(manifest, store, flat):
    """Hard-link every lib*.so* of the lib dirs into FLAT (links: same-directory ones copied,
    others replaced by their target); returns the names seen more than once."""
    duplicates = []
    for package in manifest["closure"]["order"]:
        for directory in manifest["lib_dirs"][package]:
            source_dir = os.path.join(store, directory)
            for name in sorted(os.listdir(source_dir)):
                source = os.path.join(source_dir, name)
                if not (name.startswith("lib") and storelib.is_library_name(name)):
                    continue
                dest = os.path.join(flat, name)
                if os.path.lexists(dest):
                    duplicates.append(name)
                elif os.path.islink(source) and "/" not in os.readlink(source):
                    os.symlink(os.readlink(source), dest)
                elif os.path.realpath(source).startswith(store + "/") and os.path.isfile(source):
                    os.link(os.path.realpath(source), dest)
    return duplicates


def patch_loader(loader, out, old, new):
    old_b, new_b = old.encode() + b"\0", new.encode() + b"\0"
    if len(new_b) > len(old_b):
        raise SystemExit(f"storm: {new} is longer than the loader's {old}")
    with open(loader, "rb") as f:
        data = f.read()
    if data.count(old_b) != 1:
        raise SystemExit(f"storm: {old} occurs {data.count(old_b)} times in {loader}, not once")
    with open(out, "wb") as f:
        f.write(data.replace(old_b, new_b.ljust(len(old_b), b"\0")))
    os.chmod(out, 0o755)


def main(argv):
    command, args = (argv[1], argv[2:]) if len(argv) > 1 else ("", [])
    functions = {"shrinkwrap": (shrinkwrap, 3), "flatten": (flatten, 5),
                 "patch-loader": (patch_loader, 4)}
    if command not in functions or len(args) != functions[command][1]:
        raise SystemExit(__doc__)
    functions[command][0](*args)


if __name__ == "__main__":
    main(sys.argv)
