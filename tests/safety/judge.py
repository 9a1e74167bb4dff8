#!/usr/bin/env python3
"""judge.py LDCACHE PRISTINE TREE: every file of TREE is its PRISTINE original, byte for byte, or
a complete new version: `ldcache verify` accepts it against the original and `ldcache show` finds
its note current. Owner, mode, extended attributes (capabilities and ACLs among them) must be the
original's either way. A name in TREE that PRISTINE lacks is allowed only if it is one
`.ldcache-<pid>-<n>` name (what a kill may leave beside a file) holding such a version of a file
of its directory. Prints a summary line; exits 1 on any torn file, lost metadata or stray file.
Paths in the output are relative to TREE."""

import json
import os
import subprocess
import sys

ldcache, pristine, tree = sys.argv[1:4]


def files(root):
    found = {}
    for directory, _, names in os.walk(root):
        for name in names:
            path = os.path.join(directory, name)
            if not os.path.islink(path):
                found[os.path.relpath(path, root)] = path
    return found


def metadata(path):
    st = os.lstat(path)
    xattrs = {name: os.getxattr(path, name, follow_symlinks=False)
              for name in os.listxattr(path, follow_symlinks=False)}
    return (st.st_uid, st.st_gid, st.st_mode, xattrs)


def is_new_version(original, candidate):
    verified = subprocess.run([ldcache, "verify", original, candidate],
                              capture_output=True).returncode == 0
    if not verified:
        return False
    shown = subprocess.run([ldcache, "show", "--json", candidate], capture_output=True, text=True)
    return shown.returncode == 0 and json.loads(shown.stdout).get("current") is True


def version_of(original, candidate):
    with open(original, "rb") as a, open(candidate, "rb") as b:
        if a.read() == b.read():
            return "original"
    return "new" if is_new_version(original, candidate) else None


before, after = files(pristine), files(tree)
counts = {"original": 0, "new": 0, "extra": 0}
problems = []
for name, original in sorted(before.items()):
    if name not in after:
        problems.append(f"{name}: missing")
        continue
    version = version_of(original, after[name])
    if version is None:
        problems.append(f"{name}: neither the original nor a verified new version")
        continue
    counts[version] += 1
    if metadata(original) != metadata(after[name]):
        problems.append(f"{name}: metadata {metadata(original)} became {metadata(after[name])}")
for name in sorted(set(after) - set(before)):
    directory, base = os.path.split(name)
    siblings = [n for n in before if os.path.dirname(n) == directory]
    if base.startswith(".ldcache-") and any(
            version_of(before[n], after[name]) for n in siblings):
        counts["extra"] += 1
    else:
        problems.append(f"{name}: a stray file")
for problem in problems:
    print(f"  {problem}")
print(f"{counts['original']} original, {counts['new']} new, {counts['extra']} extra complete "
      f"copies, {len(problems)} problems")
sys.exit(1 if problems else 0)
