#!/usr/bin/python3
"""Graft a whole Nix-like store onto a copy of its C library with `ldcache graft` (stdlib only).

  graft_store.py LDCACHE STORE LIBC_NAME
      STORE holds <hash>-<name> directories that name each other by absolute path (the corpus of
      tests/corpus). The path named LIBC_NAME is copied under a new hash (the "patched" C
      library); every path that refers to it, directly or through others, is then grafted in
      dependency order, as nix/graft.nix would, each by one `ldcache graft` call into STORE under
      a new hash of its own. Prints one JSON object: paths, copied, shared, bytes of the store and
      of the copies, seconds (the grafts alone, and per path), ELF files given notes. The copies
      are removed afterwards.
"""

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time

HASH = re.compile(rb"([0-9a-z]{32})-")


def new_name(name):
    """The same name under another hash of one length."""
    return hashlib.sha256(name.encode()).hexdigest()[:32] + name[32:]


def references(store, names):
    """{name: set of the other names its files (contents, link targets) mention}."""
    by_hash = {n[:32]: n for n in names}
    refs = {}
    for name in names:
        found = set()
        for root, dirs, files in os.walk(os.path.join(store, name)):
            for entry in files + [d for d in dirs if os.path.islink(os.path.join(root, d))]:
                path = os.path.join(root, entry)
                data = os.readlink(path).encode() if os.path.islink(path) else open(path, "rb").read()
                found.update(by_hash[h.decode()] for h in HASH.findall(data) if h.decode() in by_hash)
        found.discard(name)
        refs[name] = found
    return refs


def size(path):
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            p = os.path.join(root, f)
            if not os.path.islink(p):
                total += os.path.getsize(p)
    return total


def main(argv):
    if len(argv) != 4:
        raise SystemExit(__doc__)
    ldcache, store, libc = argv[1], argv[2], argv[3]
    names = sorted(n for n in os.listdir(store) if HASH.match(n.encode()))
    refs = references(store, names)
    changes = {}

    def changed(name):
        if name not in changes:
            changes[name] = name == libc  # until known: the layout's packages may refer in a circle
            changes[name] = name == libc or any(changed(r) for r in refs[name])
        return changes[name]

    copied = [n for n in names if changed(n) and n != libc]
    # Dependencies before dependents.
    order, done = [], set()

    def visit(name):
        if name in done:
            return
        done.add(name)
        for r in sorted(refs[name]):
            visit(r)
        if name in copied:
            order.append(name)

    for name in copied:
        visit(name)

    created = [os.path.join(store, new_name(libc))]
    notes = 0
    try:
        shutil.copytree(os.path.join(store, libc), created[0], symlinks=True)
        start = time.monotonic()
        for name in order:
            out = os.path.join(store, new_name(name))
            replace = [f"--replace={store}/{r}={store}/{new_name(r)}" for r in sorted(refs[name])
                       if changes[r]]
            p = subprocess.run([ldcache, "graft", "--json", "--store-dir", store, *replace,
                                os.path.join(store, name), out], capture_output=True, text=True)
            created.append(out)
            if p.returncode != 0:
                raise SystemExit(f"ldcache graft {name}: {p.stderr}")
            notes += json.loads(p.stdout)["notes"]["cached"]
        seconds = time.monotonic() - start
        print(json.dumps({
            "paths": len(names), "copied": len(order), "shared": len(names) - len(order) - 1,
            "store_bytes": sum(size(os.path.join(store, n)) for n in names),
            "copied_bytes": sum(size(c) for c in created[1:]),
            "seconds": round(seconds, 2),
            "ms_per_path": round(1000 * seconds / max(1, len(order)), 1),
            "files_given_notes": notes}))
    finally:
        for c in created:
            shutil.rmtree(c, ignore_errors=True)


if __name__ == "__main__":
    main(sys.argv)
