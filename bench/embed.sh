#!/usr/bin/env bash
# Speed and size: `ldcache embed` against `patchelf --build-resolution-cache` (0.19.3) batched the
# way a Nix setup hook would run it, on the corpus of tests/corpus (a Nix-like store of ~2 900 real
# ELF files with store-like run paths; tests/corpus/prepare.sh builds and caches it).
#
# Each tool runs LDCACHE_BENCH_RUNS times (default 3) on a fresh copy of the pristine corpus (page
# cache warm: the copy was just written, then synced); the median wall time counts. Size growth is
# measured per changed file against the pristine copy. Prints a markdown table and writes it to
# bench/results/embed.md.
#
# Environment: LDCACHE_CACHE_DIR (default /var/cache/ldcache), LDCACHE_BENCH_RUNS. Run as root.
set -euo pipefail
unset LD_LIBRARY_PATH LD_PRELOAD LD_DEBUG

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
cache=${LDCACHE_CACHE_DIR:-/var/cache/ldcache}
runs=${LDCACHE_BENCH_RUNS:-3}
out=$here/results/embed.md
corpus_py=(/usr/bin/python3 "$repo/tests/corpus/corpus.py")

log () { printf 'bench: %s\n' "$*" >&2; }

log "building ldcache"
(cd "$repo" && nice cargo build --release --locked -q)
built=${CARGO_TARGET_DIR:-$repo/target}/release/ldcache
[[ $built == /* ]] || built=$repo/$built

root=$("$repo/tests/corpus/prepare.sh")
pristine=$root/pristine
store=$root/store
manifest=$root/manifest.json
patchelf=$cache/patchelf-0.19.3/bin/patchelf
[[ $("$patchelf" --version) == 'patchelf 0.19.3' ]] || { log "no patchelf 0.19.3 at $patchelf"; exit 1; }

exec 9> "$root/lock"
flock 9
work=$(mktemp -d /tmp/ldcache-bench.XXXXXX)
trap 'rm -rf "$work" "$store"' EXIT
# A private copy: other builds in the same checkout may replace target/release/ldcache meanwhile.
cp "$built" "$work/ldcache"
ldcache=$work/ldcache

fresh_copy () {
  rm -rf "$store"
  cp -a "$pristine" "$store"
  sync
}

# The way a Nix setup hook batches it: every regular file, ELF files picked with a bash read of
# the magic (stdenv's isELF, no process per file), 64 files per patchelf call, 2 calls at a time.
patchelf_hook () {
  find "$store" -type f -print0 |
    bash -c '
      isELF () { local fd magic; exec {fd}< "$1"; read -r -n 4 -u "$fd" magic; exec {fd}<&-; [[ $magic == $'"'"'\177ELF'"'"' ]]; }
      while IFS= read -r -d "" f; do isELF "$f" && printf "%s\0" "$f"; done' |
    xargs -0 -r -P2 -n64 "$patchelf" --build-resolution-cache
}

elf_filter_only () {
  find "$store" -type f -print0 |
    bash -c '
      isELF () { local fd magic; exec {fd}< "$1"; read -r -n 4 -u "$fd" magic; exec {fd}<&-; [[ $magic == $'"'"'\177ELF'"'"' ]]; }
      n=0; while IFS= read -r -d "" f; do isELF "$f" && n=$((n + 1)); done; echo "$n"' > "$work/n_elf"
}

ldcache_embed () {
  "$ldcache" embed --store-dir "$store" "$store"
}

# timed NAME RUN COMMAND: run COMMAND, append "NAME real user sys status" to $work/times.
timed () {
  local name=$1 run=$2 status=0
  shift 2
  local TIMEFORMAT='%R %U %S'
  { time { "$@" >> "$work/$name.log" 2>&1 || status=$?; } ; } 2> "$work/time"
  echo "$name $(cat "$work/time") $status" >> "$work/times"
  log "$name run $run: $(cat "$work/time") (real user sys), exit $status"
}

: > "$work/times"
load0=$(cut -d' ' -f1 /proc/loadavg)
for run in $(seq 1 "$runs"); do
  fresh_copy
  timed ldcache "$run" ldcache_embed
  [[ $run == 1 ]] && "${corpus_py[@]}" sizes "$manifest" "$pristine" "$store" > "$work/sizes-ldcache.json"
  fresh_copy
  timed patchelf "$run" patchelf_hook
  [[ $run == 1 ]] && "${corpus_py[@]}" sizes "$manifest" "$pristine" "$store" > "$work/sizes-patchelf.json"
done
fresh_copy
timed elf-filter 1 elf_filter_only
grep -v '^warning:' "$work/patchelf.log" | sed "s|$store/||g" | sort | uniq -c | sort -rn > "$work/patchelf_errors" || true

n_files=$(wc -l < "$root/pristine.sums")
read -r n_elf n_dynamic < <(/usr/bin/python3 -c \
  'import json,sys; j=json.load(open(sys.argv[1]))["files"]; print(len(j), sum(e["dynamic"] for e in j))' "$manifest")
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')
commit=$(git -C "$repo" rev-parse --short HEAD 2> /dev/null || echo unknown)
mkdir -p "$(dirname "$out")"

/usr/bin/python3 - "$work" "$out" "$runs" "$n_files" "$n_elf" "$n_dynamic" "$(nproc)" "$cpu" \
  "$commit" "$("$ldcache" --version)" "$("$patchelf" --version)" "$load0" "$(cut -d' ' -f1 /proc/loadavg)" \
  "$store" <<'EOF'
import json, statistics, sys, datetime
work, out, runs, n_files, n_elf, n_dynamic, nproc, cpu, commit, lv, pv, load0, load1, store = sys.argv[1:]
times = {}
for line in open(f"{work}/times"):
    name, real, user, sys_, status = line.split()
    times.setdefault(name, []).append((float(real), float(user), float(sys_), int(status)))
sizes = {t: json.load(open(f"{work}/sizes-{t}.json")) for t in ("ldcache", "patchelf")}
med = {t: statistics.median(r for r, *_ in times[t]) for t in ("ldcache", "patchelf")}
cpu_s = {t: statistics.median(u + s for _, u, s, _ in times[t]) for t in ("ldcache", "patchelf")}
status = {t: sorted({st for *_, st in times[t]}) for t in ("ldcache", "patchelf")}
speedup = med["patchelf"] / med["ldcache"]
error_lines = open(f"{work}/patchelf_errors").read().splitlines()
errors = sum(int(l.split()[0]) for l in error_lines) // max(1, int(runs))
errors_list = "".join(f"\n  - `{l.strip()}`" for l in error_lines[:10])
filter_s = times["elf-filter"][0][0]

def kib(n):
    return f"{n / 1024:,.1f} KiB" if abs(n) >= 1024 else f"{n} B"

rows = []
for t, cmd in (("ldcache", "`ldcache embed --store-dir S S` (default threads)"),
               ("patchelf", "`find S -type f` → isELF → `xargs -P2 -n64 patchelf --build-resolution-cache`")):
    s = sizes[t]
    rows.append(f"| {t} | {cmd} | {' / '.join(f'{r:.2f}' for r, *_ in times[t])} | **{med[t]:.2f}** "
                f"| {cpu_s[t]:.2f} | {','.join(map(str, status[t]))} | {s['changed']} | {kib(s['median'])} "
                f"| {kib(s['p90'])} | {kib(s['max'])} | {s['total'] / 2**20:,.1f} MiB | {kib(s['note_median'])} |")
goal_speed = "met" if speedup >= 4 else "NOT met"
goal_size = "met" if sizes["ldcache"]["median"] <= 512 else "NOT met"
text = f"""# `ldcache embed` vs `patchelf --build-resolution-cache`

Regenerate: `bench/embed.sh` (as root; builds the corpus once with `tests/corpus/prepare.sh`).

- Machine: {nproc} CPUs ({cpu}); {datetime.date.today().isoformat()}; ldcache {lv.split()[-1]} at commit {commit}; {pv}.
  Load average (1 min) at start / end: {load0} / {load1} (other jobs share the machine: wall
  times are noisy, CPU times less so).
- Corpus: {int(n_files):,} files, {int(n_elf):,} ELF files ({int(n_dynamic):,} dynamically linked) in a Nix-like
  store (the system's /usr/bin, /usr/sbin, /usr/lib/x86_64-linux-gnu grouped by package, plus 34
  unpacked Debian packages: Qt 5, GTK 3/4, LLVM 14, ICU, Boost, WebKitGTK, LibreOffice, VLC,
  GStreamer, ImageMagick, SANE, frei0r); every dynamic ELF file has a store-like DT_RUNPATH.
- Each tool: {runs} runs, each on a fresh copy of the pristine corpus (page cache warm: copied, then
  synced); wall time of the whole tree. Sizes: growth of each file that changed (run 1) against
  the pristine copy; hard links count once.

| tool | command | wall s per run | median wall s | CPU s (user+sys, median) | exit | files changed | growth median | p90 | max | total growth | NixOS notes median |
| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |
{chr(10).join(rows)}

- Speed-up of ldcache over patchelf: **{speedup:.1f}×** (goal ≥ 4×: {goal_speed}).
- Median growth of a file with ldcache: **{kib(sizes['ldcache']['median'])}** (goal ≤ 512 B: {goal_size}).
  Files that changed but kept their size: ldcache {sizes['ldcache']['same_size']:,}, patchelf
  {sizes['patchelf']['same_size']:,}. The notes themselves (both NixOS note records) take a median
  {kib(sizes['ldcache']['note_median'])} with ldcache, {kib(sizes['patchelf']['note_median'])} with patchelf.
- Files given one more load segment (one more `mmap` at every start): ldcache
  {sizes['ldcache']['more_loads']:,}, patchelf {sizes['patchelf']['more_loads']:,}.
- The corpus's store directory is `{store}` ({len(store)} characters against 10 for `/nix/store`):
  every `=` entry of a note is {len(store) - 10} bytes longer than it would be on Nix.
- The patchelf pipeline's share spent finding ELF files (`find` + isELF alone): {filter_s:.2f} s.
- patchelf error lines per run: {errors} (patchelf stops at a file it cannot handle, and the rest of
  that batch of 64 files gets no note); over all runs:{errors_list}
- patchelf 0.19.3 takes every existing absolute directory as cacheable, ldcache only those
  under `--store-dir`; they also skip different files, hence different "files changed".
"""
open(out, "w").write(text)
print(text)
EOF
