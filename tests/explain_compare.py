#!/usr/bin/env python3
"""explain_compare.py [--loader L] [--store-dir S] LDCACHE CACHE PROGRAM [-- COMMAND...]

`ldcache explain` against the real loader, search by search, at start-up. Runs COMMAND (default:
PROGRAM; the loader its PT_INTERP names) under strace with LD_DEBUG=libs, in this script's
environment less LD_LIBRARY_PATH: the loader's debug lines and its open/stat calls arrive in one
ordered trace, so every failing call belongs to the `find library=` block it happened in. Only the
first process counts, up to its first `calling init` (the start-up `explain` models). Then
`LDCACHE explain --json --library-path '' --cache CACHE [--loader L] [--store-dir S] PROGRAM`
(CACHE: notes or off). For every search the two must agree on the soname, the file kept, the
number of failing open/stat calls, every file tried in order (`trying file=`) and where the file
was found (via: the note, the list a `search path=` line names, or the cache). Prints one line
saying so, or the first difference, and exits 1 on a difference. Used by tests/e2e and
bench/storm."""

import json
import os
import re
import subprocess
import sys
import tempfile

args = sys.argv[1:]
options = []
while args and args[0] in ("--loader", "--store-dir"):
    options += args[:2]
    args = args[2:]
ldcache, cache, program = args[:3]
command = args[4:] if args[3:4] == ["--"] else [program]
CALLS = "open,openat,stat,lstat,newfstatat,statx,write,writev"


def unescape(text):
    """The strings of one strace line, C escapes undone, in order."""
    out, i, strings, current = [], 0, [], None
    while i < len(text):
        c = text[i]
        if current is None:
            if c == '"':
                current = bytearray()
        elif c == '"':
            strings.append(current.decode(errors="replace"))
            current = None
        elif c == "\\":
            i += 1
            e = text[i]
            simple = {"n": 10, "t": 9, "r": 13, "v": 11, "f": 12}
            if e in simple:
                current.append(simple[e])
            elif e == "x":
                current.append(int(text[i + 1:i + 3], 16))
                i += 2
            elif e.isdigit():
                j = i
                while j < len(text) and j < i + 3 and text[j] in "01234567":
                    j += 1
                current.append(int(text[i:j], 8))
                i = j - 1
            else:
                current.append(ord(e))
        else:
            current.extend(c.encode())
        i += 1
    return strings


def source_of(line):
    if line.startswith("search cache="):
        return "ld_so_cache"
    if not line.startswith("search path="):
        return None
    label = line.rsplit("\t\t(", 1)[-1]
    for word, via in (("RUNPATH", "runpath"), ("RPATH", "rpath"), ("LD_LIBRARY_PATH", "ld_library_path")):
        if word in label:
            return via
    return "default"


def observe():
    with tempfile.NamedTemporaryFile() as trace:
        env = dict(os.environ, LD_DEBUG="libs")
        env.pop("LD_LIBRARY_PATH", None)
        subprocess.run(["strace", "-f", "-qq", "-s", "65536", "-o", trace.name, "-e",
                        f"trace={CALLS}", "--", *command], env=env, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        lines = open(trace.name, errors="replace").read().splitlines()
    # The first process only (strace -f prefixes each line with its pid).
    first = re.match(r"(\d+) ", lines[0]).group(1) if lines else None
    lines = [line[len(first):].lstrip() for line in lines if line.startswith(first + " ")]
    searches, unattributed, stderr, started = [], [], "", None
    block = None  # {opened, announced, source}

    def finish():
        search = searches[-1]
        kept = None
        for path, ok in reversed(block["opened"]):
            how = [via for tried, via in block["announced"] if tried == path]
            if ok and how:
                kept = (path, how[0])
                break
        search["tried"] = [path for path, _ in block["announced"]]
        search["resolved"], search["via"] = kept if kept else (None, None)

    for line in lines:
        if started is False:
            break
        m = re.match(r"(\w+)\((.*)\) += (.*)$", line)
        if not m:
            continue
        name, args, result = m.groups()
        if name.startswith("write"):
            if args.startswith("2,"):
                stderr += "".join(unescape(args))
            while "\n" in stderr:
                text, stderr = stderr.split("\n", 1)
                text = text.split(":\t", 1)[-1]
                if text.startswith("  trying file=") and block:
                    block["announced"].append((text[len("  trying file="):], block["source"] or "default"))
                elif text.strip().startswith("ldcache: using note of file=") and block:
                    block["source"] = "note"
                elif source_of(text.strip()) and block:
                    block["source"] = source_of(text.strip())
                elif text.startswith("find library="):
                    if block:
                        finish()
                    block = {"opened": [], "announced": [], "source": None}
                    soname = text[len("find library="):].split(" [")[0].split("; ")[0]
                    searches.append({"soname": soname, "failed": 0})
                elif text.startswith("calling init") or "error while loading" in text:
                    if block:
                        finish()
                        if "error while loading" in text:
                            searches[-1]["resolved"] = searches[-1]["via"] = None
                    block = None
                    started = False  # start-up is over
                    break
            continue
        strings = unescape(args)
        failed = result.startswith("-1")
        if name.startswith("open") and block and strings:
            block["opened"].append((strings[0], not failed))
        if failed and strings:
            if block:
                searches[-1]["failed"] += 1
            else:
                unattributed.append(line)
    if block:
        finish()
    return searches, unattributed


def predict():
    out = subprocess.run([ldcache, "explain", "--json", "--library-path", "", "--cache", cache,
                          *options, program], capture_output=True, text=True, check=True).stdout
    j = json.loads(out)
    system_dirs = j["loader"]["system_dirs"]
    searches = []
    for obj in j["objects"]:
        for needed in obj["needed"]:
            # No search: a name already loaded, or one with a slash, opened as written (the
            # loader prints no `find library=` for either).
            if needed["via"] in ("already_loaded", "path"):
                continue
            resolved, via = needed["resolved"], needed["via"]
            # The loader names one of its default directories "system search path" even when
            # a DT_RUNPATH or DT_RPATH names it too.
            if resolved and via in ("runpath", "rpath") and os.path.dirname(resolved) in system_dirs:
                via = "default"
            searches.append({"soname": needed["soname"], "failed": needed["failed_lookups"],
                             "tried": [a["path"] for a in needed["attempts"]],
                             "resolved": resolved, "via": via if resolved else None})
    return searches, j["failed_lookups"]


observed, unattributed = observe()
predicted, total = predict()
problems = []
if unattributed:
    problems.append(f"failing calls outside any search: {unattributed[:3]}")
if len(predicted) != len(observed):
    problems.append(f"{len(predicted)} searches predicted, {len(observed)} made")
for p, o in zip(predicted, observed):
    if p != o:
        for key in ("soname", "resolved", "via", "failed", "tried"):
            if p.get(key) != o.get(key):
                problems.append(f"{o['soname']}: {key}: predicted {p.get(key)!r}, observed {o.get(key)!r}")
                break
        break
observed_total = sum(s["failed"] for s in observed) + len(unattributed)
if total != observed_total:
    problems.append(f"total failing calls: predicted {total}, observed {observed_total}")
tried = sum(len(s["tried"]) for s in observed)
if problems:
    print("\n".join(problems))
    sys.exit(1)
print(f"{len(observed)} searches, {tried} files tried, {observed_total} failing calls: all as predicted")
