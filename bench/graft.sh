#!/usr/bin/env bash
# What a graft costs (README, "Without rebuilding the world"), as root:
#   1. with real Nix: the closure of tests/nix/graft (eleven store paths that refer to glibc, one
#      that does not) grafted onto a patched glibc never used before (a file of this run's time
#      in it), so that every copy is built, timed; the bytes of the copies against those of the
#      closure;
#   2. a corpus-sized store: the corpus of tests/corpus (577 store paths, about 2 GB) grafted
#      onto a copy of its C library with `ldcache graft` alone, path by path in dependency order
#      (bench/graft_store.py), on a fresh copy of the pristine corpus.
# Writes bench/results/graft.md and prints it.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"
# shellcheck source=tests/nix/lib.sh
source tests/nix/lib.sh
cache=${LDCACHE_CACHE_DIR:-/var/cache/ldcache}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

log () { printf 'bench: %s\n' "$*" >&2; }

real_nix_setup "$cache"
graft_inputs 2.42
date +%s.%N > "$work/nonce"
patched=$(store_add glibc-2.42 "$work/patched/lib" "$work/nonce")
args=(--argstr ldcache "$tool" --argstr stockGlibc "$stock" --argstr patchedGlibc "$patched")
build () { nix-build --no-out-link tests/nix/graft "${args[@]}" -A "$1" 2>"$work/build.log"; }
original=$(build script)
log "grafting tests/nix/graft's closure"
start=$(date +%s.%N)
grafted=$(build grafted)
nix_seconds=$(echo "$start $(date +%s.%N)" | awk '{ printf "%.2f", $2 - $1 }')
mapfile -t copies < <(comm -23 <(nix-store -qR "$grafted" | sort) \
    <({ nix-store -qR "$original"; echo "$patched"; } | sort))
mapfile -t closure < <(nix-store -qR "$original")
bytes () { du -scb "$@" | tail -n 1 | cut -f1; }
closure_bytes=$(bytes "${closure[@]}")
copied_bytes=$(bytes "${copies[@]}")

log "grafting the corpus"
root=$(tests/corpus/prepare.sh)
exec 9> "$root/lock"
flock 9
rm -rf "$root/store"
cp -a "$root/pristine" "$root/store"
libc=$(basename "$(find "$root/store" -maxdepth 1 -name '*-sys-libc6')")
corpus=$(/usr/bin/python3 -B bench/graft_store.py "$repo/target/release/ldcache" "$root/store" "$libc")
rm -rf "$root/store"
flock -u 9

mkdir -p bench/results
/usr/bin/python3 - "$corpus" "${#copies[@]}" "$nix_seconds" "$closure_bytes" "$copied_bytes" \
    "$(nproc)" > bench/results/graft.md <<'EOF'
import datetime, json, sys
c = json.loads(sys.argv[1])
copies, nix_seconds, closure, copied, nproc = sys.argv[2:]
mib = lambda b: f"{int(b) / 2**20:,.1f} MiB"
print(f"""<!-- bench/graft.sh, {datetime.date.today()}, {nproc} cores -->
# What a graft costs

| store | store paths | copied | shared | bytes of the store | bytes copied | time |
| --- | --- | --- | --- | --- | --- | --- |
| tests/nix/graft's closure, real Nix (`nix-build` of the graft: the graph, then every copy) | 13 | {copies} | {13 - int(copies) - 1} and the C library | {mib(closure)} | {mib(copied)} | {nix_seconds} s |
| tests/corpus (`ldcache graft` per path, no Nix) | {c['paths']} | {c['copied']} | {c['shared']} | {mib(c['store_bytes'])} | {mib(c['copied_bytes'])} ({100 * c['copied_bytes'] / c['store_bytes']:.1f} %) | {c['seconds']} s ({c['ms_per_path']} ms per path) |

- Copied: every path that refers to the C library, directly or through others; shared: the rest.
  On the corpus {c['files_given_notes']:,} ELF files got notes in their copies.
- With Nix each copy is one derivation (builder `ldcache graft`): here {1000 * float(nix_seconds) / (int(copies) + 1):.0f} ms per build
  (the copies and the reference graph; single-user Nix without a sandbox), on top of what
  `ldcache graft` itself takes per path (the corpus figure).
- Space: a graft copies nearly all the bytes of a closure's programs and libraries; only
  data-only paths are shared. A second graft of the same closure copies nothing (the copies are
  derivations of their inputs); after an update, what changed and what refers to it.
""")
EOF
cat bench/results/graft.md
