#!/usr/bin/env bash
# Where the loader's work goes in each storm scenario: user-space instructions (callgrind: the
# whole run, the loader's dependency mapping, and the functions that differ most between the
# notes and the floor) and system calls (strace -c: all, failing). For issue "to the floor".
#
# Usage: LDCACHE_KEEP=1 bench/storm/run.sh PACKAGE COMMAND [ARG]...   (keeps its work directory)
#        bench/floor-profile.sh WORK_DIR [ARG]...   (ARGs: the program's arguments, e.g. --version)
# WORK_DIR holds s1..s5 (the last RUNPATH variant the run built) and meta.json. Needs valgrind and
# strace; prints a markdown report.
set -euo pipefail
work=${1:?usage: bench/floor-profile.sh STORM_WORK_DIR [ARG]...}
shift
exe=$(/usr/bin/python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["exe"])' "$work/meta.json")
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
env_args=(PATH=/usr/bin:/bin "HOME=$work/home" LC_ALL=C TERM=dumb)

for n in 1 2 3 4 5; do
    program=$work/s$n/store/$exe
    env -i "${env_args[@]}" valgrind --tool=callgrind --callgrind-out-file="$out/cg.$n" \
        "$program" "$@" >/dev/null 2>"$out/valgrind.$n" || { cat "$out/valgrind.$n" >&2; exit 1; }
    PYTHONDONTWRITEBYTECODE=1 /usr/bin/python3 "$(dirname "$0")/storm/measure.py" \
        loader-functions "$out/cg.$n" >"$out/loader.$n.json"
    env -i "${env_args[@]}" strace -f -c -o "$out/strace.$n" "$program" "$@" >/dev/null 2>&1
done

/usr/bin/python3 - "$out" "$exe" "$@" <<'EOF'
import json, sys
out, exe, args = sys.argv[1], sys.argv[2], sys.argv[3:]
names = {1: "stock", 2: "ldcache notes", 3: "patchelf notes", 4: "shrinkwrap", 5: "floor"}

def functions(n):
    """Instructions per loader function (inclusive), from measure.py loader-functions."""
    return json.load(open(f"{out}/loader.{n}.json"))["functions"]

def total(n):
    return json.load(open(f"{out}/loader.{n}.json"))["total"]

def syscalls(n):
    lines = open(f"{out}/strace.{n}").read().splitlines()
    last = lines[-1].split()
    # "100.00 seconds usecs calls [errors] total"
    return int(last[3]), int(last[4]) if len(last) > 5 else 0

incl = {n: functions(n) for n in names}
print(f"# Loader profile: `{exe} {' '.join(args)}`\n")
print("| scenario | instructions, whole run | `_dl_map_object_deps` (inclusive) | syscalls | failing |")
print("| --- | --- | --- | --- | --- |")
for n, name in names.items():
    calls, errors = syscalls(n)
    print(f"| {n} {name} | {total(n):,} | {incl[n].get('_dl_map_object_deps', 0):,} | {calls} | {errors} |")
print("\nLoader functions that differ most between the notes (2) and the floor (5), inclusive:\n")
print("| function | " + " | ".join(f"{n} {names[n]}" for n in names) + " |")
print("| --- |" + " --- |" * len(names))
keys = set().union(*[set(c) for c in incl.values()])
wanted = sorted(keys, key=lambda k: -abs(incl[2].get(k, 0) - incl[5].get(k, 0)))
skip = {"dl_main", "_dl_sysdep_start", "_dl_start", "_dl_start_final"}
for key in [k for k in wanted if k not in skip and not k.startswith("0x")][:14]:
    print(f"| `{key}` | " + " | ".join(f"{incl[n].get(key, 0):,}" for n in names) + " |")
EOF
