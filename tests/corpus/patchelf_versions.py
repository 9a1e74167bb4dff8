#!/usr/bin/env python3
"""patchelf_versions.py ROOT PATCHELF LDCACHE: one row of tests/corpus/patchelf-versions.sh.

ROOT/store becomes a fresh copy of ROOT/pristine in which every file with a system original
(manifest.json's system_path) is that original again, given the manifest's RUNPATH by PATCHELF.
Then `LDCACHE embed` runs over the store; every file it rewrote is checked with `LDCACHE verify`
against a copy kept as PATCHELF left it."""

import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from refusals import judge

root, patchelf, ldcache = sys.argv[1:4]
store, pristine = os.path.join(root, "store"), os.path.join(root, "pristine")
before = os.path.join(root, "before")
manifest = json.load(open(os.path.join(root, "manifest.json")))
version = subprocess.run([patchelf, "--version"], capture_output=True, text=True).stdout.split()[-1]

for directory in (store, before):
    shutil.rmtree(directory, ignore_errors=True)
shutil.copytree(pristine, store, symlinks=True)
os.makedirs(before)
files = [f for f in manifest["files"] if f.get("system_path") and f.get("runpath")]


def set_runpath(entry):
    path = os.path.join(store, entry["path"])
    os.chmod(path, 0o755)
    shutil.copyfile(entry["system_path"], path)
    done = subprocess.run([patchelf, "--set-rpath", entry["runpath"], path], capture_output=True)
    if done.returncode != 0:
        return None
    kept = os.path.join(before, entry["path"].replace("/", "%"))
    shutil.copyfile(path, kept)
    return path, kept


with ThreadPoolExecutor(os.cpu_count()) as pool:
    rewritten = [r for r in pool.map(set_runpath, files) if r]

embed = subprocess.run([ldcache, "embed", "--json", "--store-dir", store, store],
                       capture_output=True, text=True)
summary = json.loads(embed.stdout)
ours = {path for path, _ in rewritten}
refused = [r for r in summary["refused"] if r["path"] in ours]
reasons = Counter(r["reason"] for r in refused)


def verify(pair):
    path, kept = pair
    if path in {r["path"] for r in refused}:
        return True
    return subprocess.run([ldcache, "verify", kept, path], capture_output=True).returncode == 0


with ThreadPoolExecutor(os.cpu_count()) as pool:
    failures = sum(1 for ok in pool.map(verify, rewritten) if not ok)
shutil.rmtree(before)
# Each kind of reason within its bound; the injector's own check is a defect, bound 0.
within, lines = judge([r["reason"] for r in refused], len(rewritten))
share = 100.0 * len(refused) / max(1, len(rewritten))
by_reason = "; ".join(f"{n} {reason}" for reason, n in reasons.most_common()) or "none"
print(f"| {version} | {len(rewritten)} | {summary['cached']} | {by_reason} | {share:.1f} % | {failures} |")
if not within:
    print("\n".join(f"  refusals: {line}" for line in lines), file=sys.stderr)
ok = embed.returncode == 0 and within and failures == 0
sys.exit(0 if ok else 1)
