#!/usr/bin/env bash
# Build (once) the corpus of tests/corpus/run.sh and bench/embed.sh, and print its directory.
#
# The corpus is a Nix-like store made of the ELF files of /usr/bin, /usr/sbin and
# /usr/lib/x86_64-linux-gnu (grouped by owning Debian package, sys-<package>) and the Debian
# packages of packages.txt, downloaded with `apt-get download` and unpacked with `dpkg-deb -x`
# (never installed). Every dynamically linked x86-64 ELF file gets a store-like DT_RUNPATH
# (patchelf 0.19.3 --set-rpath) naming every store directory that holds one of its needed
# sonames, three irrelevant ones, and /lib/x86_64-linux-gnu last.
#
# Layout of $LDCACHE_CACHE_DIR/corpus/<key>/ (key: hash of packages.txt and the layout version):
#   debs/          the downloaded .deb files
#   pristine/      the prepared store (never modified); its run paths name <key>/store/...
#   manifest.json  every ELF file: package, type, needed sonames, run path, system path
#   pristine.sums  sha1 of every regular file of pristine/
#   ready          written last
# Users copy pristine/ to <key>/store/ (the path the run paths name) under `flock <key>/lock`.
#
# Environment: LDCACHE_CACHE_DIR (default /var/cache/ldcache). Run as root (apt-get).
set -euo pipefail
unset LD_LIBRARY_PATH LD_PRELOAD

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cache=${LDCACHE_CACHE_DIR:-/var/cache/ldcache}
layout_version=1

log () { printf 'corpus: %s\n' "$*" >&2; }
# shellcheck source=../lib.sh
source "$here/../lib.sh"

packages () { grep -v '^\s*\(#\|$\)' "$here/packages.txt"; }

ensure_packages python3 python3-venv util-linux coreutils findutils dpkg apt
patchelf=$(patchelf_bin)

key=$( { echo "layout $layout_version"; packages; } | sha256sum | cut -c1-16)
root=$cache/corpus/$key
if [[ -f $root/ready ]]; then
  echo "$root"
  exit 0
fi

mkdir -p "$root"
exec 9> "$root/lock"
flock 9
if [[ -f $root/ready ]]; then
  echo "$root"
  exit 0
fi

start=$SECONDS
mkdir -p "$root/debs"
mapfile -t wanted < <(packages)
have=()
for pkg in "${wanted[@]}"; do
  compgen -G "$root/debs/${pkg}_*.deb" > /dev/null && have+=("$pkg")
done
if ((${#have[@]} != ${#wanted[@]})); then
  log "downloading ${#wanted[@]} packages into $root/debs"
  rm -f "$root"/debs/*.deb
  ( cd "$root/debs" &&
    { apt-get download -q=2 "${wanted[@]}" 2> /dev/null ||
      { apt-get update -qq && apt-get download -q=2 "${wanted[@]}"; }; } )
fi

rm -rf "$root/store" "$root/pristine" "$root/manifest.json" "$root/pristine.sums"
log "laying out the store (a few minutes)"
nice /usr/bin/python3 "$here/corpus.py" layout "$root/store" "$root/debs" "$patchelf"
mv "$root/store" "$root/pristine"
log "checksums"
( cd "$root/pristine" && find . -type f -print0 | sort -z | nice xargs -0 -P2 -n 256 sha1sum ) |
  sort -k2 > "$root/pristine.sums"
touch "$root/ready"
log "corpus ready in $root after $((SECONDS - start)) s"
echo "$root"
