#!/usr/bin/python3
"""The markdown report of one storm run (stdlib only).

  report.py WORK MANIFEST OUT.md
      Reads WORK/results.jsonl, WORK/meta.json, WORK/command_line, WORK/times.json (timing.py)
      and the embed logs; writes OUT.md and prints it.
"""

import datetime
import json
import os
import shlex
import statistics
import sys

import stats

SCENARIOS = {"1": "1 stock loader", "2": "2 ldcache notes", "3": "3 patchelf notes",
             "4": "4 shrinkwrap (absolute DT_NEEDED)", "5": "5 floor (one dir + ld.so.cache)"}
VARIANTS = {"full": "full dependency list (upper bound)",
            "shrink": "after `patchelf --shrink-rpath` (what nixpkgs' fixup leaves)"}
SMALL_FRACTION = 0.10  # "a small fraction" of patchelf's growth, made concrete
HEADER = ("| scenario | output as 1 | failing lookups: resolution / all (whole run) "
          "| resolution lookups at start-up: measured / `ldcache explain` | mmap (of files) | syscalls "
          "| wall ms, median [95 % CI] | CPU ms (user + sys) | wall ratio to 1 [95 % CI] "
          "| loader instructions: start-up / dependency mapping "
          "| size growth of the ELF files (median, max: of the changed files) |\n"
          "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")


def load_results(work):
    results = {}
    with open(os.path.join(work, "results.jsonl")) as f:
        for line in f:
            r = json.loads(line)
            results[(r["variant"], r["scenario"], r["key"])] = r["value"]
    return results


def load_times(work):
    """timing.py's OUT, with {(variant, scenario): [seconds per round]} as "wall" and "cpu" and
    the round indices of each placement as "blocks"."""
    with open(os.path.join(work, "times.json")) as f:
        t = json.load(f)
    keys = [tuple(k) for k in t["configurations"]]
    t["wall"], t["blocks"] = stats.flatten(keys, t["placements"], 0)
    t["cpu"], _ = stats.flatten(keys, t["placements"], 1)
    return t


def kib(n):
    return f"{n / 1024:,.1f} KiB" if abs(n) >= 1024 else f"{n:g} B"


def embed_summary(work, variant, scenario):
    """A short account of what a writer did, from its log."""
    path = os.path.join(work, f"embed-{variant}-s{scenario}.log")
    text = open(path, errors="replace").read() if os.path.exists(path) else ""
    if scenario == "2":
        start = text.find("{")
        try:
            j = json.loads(text[start:text.rindex("}") + 1])
        except ValueError:
            return "no JSON summary"
        reasons = ", ".join(f"{v} {k}" for k, v in sorted(j.get("skipped_reasons", {}).items()))
        refused = "; ".join(f"`{os.path.basename(r['path'])}`: {r['reason']}"
                            for r in j.get("refused", [])[:3])
        return (f"{j['cached']} cached, {j['skipped']} skipped ({reasons}), "
                f"{len(j.get('refused', []))} refused{': ' + refused if refused else ''}")
    lines = [l for l in text.splitlines() if l.strip() and not l.startswith("warning:")]
    if not lines:
        return "no error message"
    kinds = {}
    for line in lines:
        kinds.setdefault(line.split(":")[-1].strip()[:80], []).append(line)
    return f"{len(lines)} error lines: " + "; ".join(
        f"{len(v)}× `{k}`" for k, v in sorted(kinds.items(), key=lambda kv: -len(kv[1]))[:3])


class Report:
    def __init__(self, work, manifest_path):
        self.work = work
        self.results = load_results(work)
        self.times = load_times(work)
        self.wall, self.cpu, self.blocks = (self.times[k] for k in ("wall", "cpu", "blocks"))
        self.rounds = len(next(iter(self.wall.values())))
        with open(os.path.join(work, "meta.json")) as f:
            self.meta = json.load(f)
        with open(manifest_path) as f:
            self.manifest = json.load(f)
        with open(os.path.join(work, "command_line"), "rb") as f:
            self.argv = [a.decode() for a in f.read().split(b"\0")[:-1]]

    def get(self, variant, scenario, key, field=None, default=None):
        value = self.results.get((variant, scenario, key))
        if field is None or value is None:
            return value if value is not None else default
        return value.get(field, default)

    def median_ms(self, series, variant, scenario):
        """'median [low, high]' in ms of one configuration's runs."""
        median, low, high = stats.median_ci(series[(variant, scenario)], self.blocks)
        return f"{median * 1e3:.2f} [{low * 1e3:.2f}, {high * 1e3:.2f}]"

    def loaded(self, variant, scenario):
        objects = self.get(variant, scenario, "predicted", "objects", [])
        return set(objects) if isinstance(objects, list) else set()

    # -- header

    def header(self):
        m, meta = self.manifest, self.meta
        files = m["files"]
        dynamic = [f for f in files.values() if f.get("dynamic") and "link_of" not in f]
        exe = files.get(meta["exe"], {})

        def entries(rp):
            return len(rp.split(":")) if rp else 0

        per_file = {k: statistics.median(entries(f.get(k)) for f in dynamic) if dynamic else 0
                    for k in ("runpath", "runpath_shrunk")}
        lib_dirs = sum(len(v) for v in m["lib_dirs"].values())
        cmd = " ".join(shlex.quote(a) for a in self.argv[1:])
        seconds = int(meta["seconds"])
        return f"""# Stat storm: `{meta['package']}` (`{cmd}`)

Regenerate (as root): `bench/storm/run.sh {' '.join(shlex.quote(a) for a in self.argv)}`

- Machine: {meta['nproc']} CPUs ({meta['cpu']}), load average (1 min) {meta['load_start']} at \
the start, {meta['load_end']} at the end; {datetime.date.today().isoformat()}.
- Versions: commit {meta['commit']}, {meta['ldcache_version']} (binary sha256 \
{meta['ldcache_sha256'][:12]}), {meta['patchelf_version']}, \
glibc 2.43 pristine and patched (`tests/e2e/build-glibc.sh`).
- Whole run: {seconds // 60} min {seconds % 60} s; {self.rounds} timed rounds of every \
configuration in {len(self.blocks)} placements (at least {meta['runs']}, `LDCACHE_STORM_RUNS`; \
at most {meta.get('max_runs', '?')}, `LDCACHE_STORM_MAX_RUNS`).
- Store: the closure of `{meta['package']}` (Depends + Pre-Depends, libc6 left out), \
{len(m['closure']['order'])} packages, {len(files)} ELF files; {len(dynamic)} dynamically linked \
x86-64 files given a DT_RUNPATH, {lib_dirs} lib dirs. RUNPATH entries per file, median: \
{per_file['runpath']:g} full, {per_file['runpath_shrunk']:g} shrunk.
- Executable: `{meta['exe']}` (`{self.argv[1]}`), {len(exe.get('needed', []))} DT_NEEDED, \
RUNPATH of {entries(exe.get('runpath'))} entries ({entries(exe.get('runpath_shrunk'))} shrunk).
"""

    # -- the tables

    def row(self, variant, n):
        g = self.get
        run = g(variant, n, "run", default={})
        works = "yes" if run.get("same_as_s1") else f"**no** (exit {run.get('status')})"
        trace = g(variant, n, "trace", default={})
        startup = g(variant, n, "startup", default={})
        predicted = g(variant, n, "predicted", "failed_lookups", "—")
        ratio, low, high = stats.ratio_ci(self.wall[(variant, n)], self.wall[(variant, "1")],
                                          self.blocks)
        instr = g(variant, n, "instructions", default={})
        instructions = f"{instr.get('startup', 0):,} / {instr.get('map_deps', 0):,}"
        sizes = g(variant, n, "sizes")
        growth = "—"
        if sizes:
            pct = 100 * sizes["total_growth"] / max(1, sizes["total_before"])
            growth = (f"+{kib(sizes['total_growth'])} ({pct:.2f} %); {sizes['changed']} files "
                      f"changed, "
                      f"median {kib(sizes['median'])}, max {kib(sizes['max'])}; "
                      f"{sizes['extra_load']} extra PT_LOAD")
        return (f"| {SCENARIOS[n]} | {works} | {trace.get('failing_resolution', '—')} / "
                f"{trace.get('failing', '—')} | {startup.get('failing_resolution', '—')} / "
                f"{predicted} | {trace.get('mmap', '—')} ({trace.get('mmap_file', '—')}) | "
                f"{trace.get('syscalls', '—')} | {self.median_ms(self.wall, variant, n)} | "
                f"{self.median_ms(self.cpu, variant, n)} | "
                f"{ratio:.3f} [{low:.3f}, {high:.3f}] | {instructions} | {growth} |")

    def table(self, variant):
        rows = "\n".join(self.row(variant, n) for n in SCENARIOS)
        return f"""## RUNPATH: {VARIANTS[variant]}

{HEADER}
{rows}
"""

    def writers(self):
        rows = []
        for variant in VARIANTS:
            for n, writer in (("2", "`ldcache embed --store-dir S S`"),
                              ("3", "patchelf 0.19.3 `--build-resolution-cache`, "
                                    "`xargs -n64 -P$(nproc)`")):
                e = self.get(variant, n, "embed", default={})
                listing = self.get(variant, n, "list", "seconds")
                extra = f" (+ {listing:.2f} to list the files)" if listing is not None else ""
                rows.append(f"| {variant} | {writer} | {e.get('seconds', 0):.2f}{extra} | "
                            f"{e.get('status', '—')} | {embed_summary(self.work, variant, n)} |")
        verify = [f"{v}: {self.get(v, '2', 'verify', 'failures', '—')}" for v in VARIANTS]
        notes = [f"{v}: {self.get(v, '2', 'sizes', 'with_note', '—')} (ldcache) / "
                 f"{self.get(v, '3', 'sizes', 'with_note', '—')} (patchelf)" for v in VARIANTS]
        audits = []
        for v in VARIANTS:
            a2, a3 = self.get(v, "2", "audit", default={}), self.get(v, "3", "audit", default={})
            audits.append(f"{v}: {a2.get('files', '—')} files, stock loader "
                          f"{a2.get('stock', '—')}, patched loader with the notes present "
                          f"{a2.get('with_notes', '—')} (ldcache) / {a3.get('with_notes', '—')}"
                          f" (patchelf)")
        return f"""## Writing the notes

| RUNPATH | writer | wall s (once) | exit | what it did |
| --- | --- | --- | --- | --- |
{chr(10).join(rows)}

- ELF files carrying a note afterwards, of {self.get('full', '2', 'sizes', 'files', '—')}: \
{'; '.join(notes)}.
- `ldcache verify` of every file scenario 2 changed, against scenario 1's (store prefix \
normalised): {', '.join(verify)} failures.
- `ldcache audit --json` over the whole store (failing lookups of loading each program and \
library, summed): {'; '.join(audits)}.
- patchelf is given the list of dynamically linked ELF files, made beforehand by a Python walk of \
the store (timed apart): it gives up on the rest of a batch at the first file it cannot take, \
such as a relocatable object. `ldcache embed`'s time includes its own walk of every file. \
`bench/embed.sh` is the benchmark of the writers themselves.
"""

    # -- goals

    def goals(self):
        lines = []
        for variant in VARIANTS:
            lines += [f"- {variant}: {'held' if ok else '**missed**'}: {text}"
                      for ok, text in self.goal_checks(variant)]
        return "## Goals\n\n" + "\n".join(lines) + "\n\n" + self.time_goals()

    def time_goals(self):
        goals = stats.time_goals(list(VARIANTS))
        rows, open_goals = [], []
        cpu = {name: (ratio, low, high)
               for name, _, ratio, low, high, _ in stats.judge(goals, self.cpu, self.blocks)}
        for name, bound, ratio, low, high, verdict in stats.judge(goals, self.wall, self.blocks):
            shown = verdict if verdict == "held" else f"**{verdict}**"
            if verdict == "within noise":
                open_goals.append(name)
            c = cpu[name]
            rows.append(f"| {name} | ≤ {bound:.2f} | {ratio:.3f} [{low:.3f}, {high:.3f}] | "
                        f"{shown} | {c[0]:.3f} [{c[1]:.3f}, {c[2]:.3f}] |")
        # timing.py stops at the maximum while its quicker judgement (fewer resamples) has a
        # goal within noise; the verdicts here are this report's own.
        stopped_open = self.times["undecided"] and open_goals
        still = (f" Still within noise when the maximum of {self.meta['max_runs']} rounds was "
                 f"reached: {'; '.join(open_goals)}." if stopped_open else "")
        return f"""Start-up time, ratios of medians with 95 % bootstrap intervals over \
{self.rounds} rounds of all ten configurations in {len(self.blocks)} placements (judged on wall \
time; held: the whole interval within the bound, missed: all of it outside, within noise: \
neither).{still}

| goal | bound | wall ratio [95 % CI] | verdict | CPU (user + sys) ratio [95 % CI] |
| --- | --- | --- | --- | --- |
{chr(10).join(rows)}

{self.store_copies()}
"""

    def store_copies(self):
        """The floor's two stores hold the same files (it has no RUNPATH): a comparison whose
        true ratio is 1, to show what the placements leave of the copy effect."""
        w = self.wall
        ratio, low, high = stats.ratio_ci(w[("full", "5")], w[("shrink", "5")], self.blocks)
        spread = self.placement_spread()
        return (f"Control: the floor's two stores (`f5`, `s5`) hold the same files, the floor "
                f"having no RUNPATH; their wall ratio is {ratio:.3f} [{low:.3f}, {high:.3f}]. "
                f"Placement by placement it ranges over {spread[0]:.3f}–{spread[1]:.3f} (middle "
                f"90 %): where the pages of two copies lie moves a start-up by that much with no "
                f"loader change, which is why the times come in placements.")

    def placement_spread(self):
        """The 5th and 95th percentiles of the floor copies' ratio of medians per placement."""
        med = statistics.median
        a, b = self.wall[("full", "5")], self.wall[("shrink", "5")]
        ratios = sorted(med(a[i] for i in block) / med(b[i] for i in block)
                        for block in self.blocks)
        last = len(ratios) - 1
        return ratios[round(0.05 * last)], ratios[round(0.95 * last)]

    def goal_checks(self, variant):
        g = self.get
        res2 = g(variant, "2", "trace", "failing_resolution")
        mmap1, mmap2 = g(variant, "1", "trace", "mmap"), g(variant, "2", "trace", "mmap")
        files1, files2 = (g(variant, n, "trace", "mmap_file") for n in ("1", "2"))
        s2 = g(variant, "2", "sizes", "total_growth")
        s3 = g(variant, "3", "sizes", "total_growth")
        share = f" ({100 * s2 / s3:.1f} %)" if s2 is not None and s3 else ""
        per_search = {n: g(variant, n, "per_search", default={}) for n in SCENARIOS}
        agree = "; ".join(f"{n}: {r.get('says', 'not measured')}" for n, r in per_search.items())
        return [
            (all(r.get("ok") for r in per_search.values()),
             "`ldcache explain` agrees with the loader at start-up, search by search (files "
             f"tried, file kept, via, failing calls; `tests/explain_compare.py`): {agree}"),
            (res2 == 0, f"scenario 2 makes 0 failing resolution lookups: {res2}"
                        + ("" if res2 == 0 else self.why_lookups(variant))),
            (files2 is not None and files1 is not None and files2 <= files1,
             f"scenario 2 maps files no more often than scenario 1: {files2} vs {files1} "
             "mmap calls with a file"
             + ("" if (files2 or 0) <= (files1 or 0) else self.why_mmap(variant))),
            (mmap2 is not None and mmap1 is not None and mmap2 <= mmap1,
             f"scenario 2 makes no more mmap calls than scenario 1: {mmap2} vs {mmap1}"
             + ("" if (mmap2 or 0) <= (mmap1 or 0) else self.why_mmap(variant))),
            (s2 is not None and bool(s3) and s2 <= SMALL_FRACTION * s3,
             f"scenario 2's size growth a small fraction (≤ {SMALL_FRACTION:.0%}) of "
             f"scenario 3's: {kib(s2 or 0)} vs {kib(s3 or 0)}{share}"),
        ]

    def refused(self, variant):
        """{rel path: reason} of the files `ldcache embed` refused."""
        path = os.path.join(self.work, f"embed-{variant}-s2.log")
        try:
            text = open(path).read()
            j = json.loads(text[text.index("{"):text.rindex("}") + 1])
        except (OSError, ValueError):
            return {}
        store = os.path.join(self.work, "s2", "store")
        return {os.path.relpath(r["path"], store): r["reason"] for r in j.get("refused", [])}

    def why_lookups(self, variant):
        refused = {rel: why for rel, why in self.refused(variant).items()
                   if rel in self.loaded(variant, "2")}
        at_start = self.get(variant, "2", "startup", "failing_resolution")
        text = f"; {at_start} of them at start-up"
        if refused:
            text += ("; the command loads files `ldcache embed` refused, which the loader "
                     "searches for as the stock one does: " + ", ".join(
                         f"`{os.path.basename(rel)}` ({why})" for rel, why in refused.items()))
        return text

    def why_mmap(self, variant):
        # The executable's segments are mapped by the kernel at execve: no mmap call.
        loaded = self.loaded(variant, "2") - {self.meta["exe"]}
        grown = [rel for rel in self.get(variant, "2", "sizes", "extra_load_files", []) or []
                 if rel in loaded]
        names = ", ".join(f"`{os.path.basename(rel)}`" for rel in grown[:6])
        text = (f"; {len(grown)} of the libraries it loads got a load segment of their own for "
                f"the note")
        text += f" ({names})" if grown else ""
        control = self.get(variant, "1", "control_patched_loader", "mmap")
        mmap1 = self.get(variant, "1", "trace", "mmap")
        if control is not None and mmap1 is not None:
            text += (f"; the patched loader and libc alone, on scenario 1's files (no notes), "
                     f"make {control} ({control - mmap1:+d}): the loader's own allocator starts "
                     "in the rest of its last data page and takes anonymous pages as it needs "
                     "them, so a loader of another size, or other allocations, shift its "
                     "anonymous mmap calls by one or two")
        return text

    def notes(self):
        return f"""## How to read it

- Every scenario is its own copy of the store (`/tmp/ldcache-storm.XXXXXX/sN/store`, equal
  lengths, so equal RUNPATH lengths); ELF files are private copies, other files hard links to the
  cached base store. Scenarios 1, 2 and 3 hold the same files apart from the notes (and the glibc
  store directory: pristine in 1, patched in 2 and 3).
- Failing lookups: failing `open`/`openat`/`openat2`/`stat`/`lstat`/`newfstatat`/`statx` calls
  under `strace -f`, all processes of the run. Resolution lookups are those whose path is a needed
  soname of the store, a search directory (lib dir, glibc store directory, the loaders' default
  directory) or a `glibc-hwcaps` subdirectory of one, or a `lib*.so*` file in one; dlopen
  searches count. "At start-up" counts those of the program's own process before the loader's
  first `calling init` (from an `LD_DEBUG=libs` run), which is what `ldcache explain` models:
  `--cache off` for 1, 4, 5, `--cache notes` for 2, 3, with the scenario's own loader.
- mmap and syscalls: every call of every process in the same strace run; "of files": the mmap calls
  with a file descriptor (segments of libraries, data files), the rest being anonymous memory. A
  control run puts the patched loader and libc under scenario 1's files (no notes): the mmap calls
  the loader change costs by itself, apart from the notes (reported with the mmap goal).
- Times (`timing.py`): one block for both RUNPATH variants; each round runs all ten
  configurations once, in an order shuffled with a fixed seed, all on one CPU. The rounds come in
  placements of {self.times['rounds_per_placement']}: before each, the page cache of every file
  of every configuration is dropped and read back by {self.times['warmup']} warm-up rounds (not
  timed), so that each placement puts the files on other physical pages.
  Wall time is taken around spawn and wait; CPU time is the child's user + system time (rusage).
  At least {self.meta['runs']} rounds, and more (up to {self.meta['max_runs']}) while a timing
  goal is within noise. Medians with 95 % percentile-bootstrap intervals (2000 resamples of whole
  placements, so ratios stay paired within a round and the intervals cover the spread between
  placements; `stats.py`).
- Loader instructions: callgrind (user space, deterministic), inclusive counts of the loader's
  `_dl_start` (its whole start-up before the first initialiser: mapping, relocation) and
  `_dl_map_object_deps` (finding and mapping the dependencies).
- Environment of every run: `env -i PATH=/usr/bin:/bin HOME=<empty dir> LC_ALL=C TERM=dumb` plus
  the VAR=VALUE words of the command line.
- Debian's files have no RUNPATH: the layout gives them one with `patchelf --set-rpath` (as
  autoPatchelfHook does to prebuilt binaries on Nix), which moves `.dynstr`, `.interp` and the
  notes into a new segment at the end of the file and grows the program header table over the
  place `.interp` had. Straight from the linker, `.interp` and the notes follow the table, and
  the injector can move them to make room; here that room is gone (bar what patchelf left dead),
  so a file with a large note and little padding gets a segment of its own, or is refused.
- Scenario 5's loader is a copy of the pristine one whose baked-in ld.so.cache path (inside the
  shared glibc install, which is never written) is replaced by the scenario's own cache file,
  made by the built glibc's `ldconfig` over the one directory. Scenario 4 rewrites DT_NEEDED
  with `patchelf --replace-needed` to the file the stock loader finds through the RUNPATH
  (RUNPATH kept, for dlopen by soname).
"""

    def text(self):
        return "\n".join([self.header(), self.table("full"), self.table("shrink"),
                          self.writers(), self.goals(), self.notes()])


def main(argv):
    if len(argv) != 4:
        raise SystemExit(__doc__)
    text = Report(argv[1], argv[2]).text()
    with open(argv[3], "w") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    main(sys.argv)
