#!/usr/bin/env bash
# The patched loader on aarch64-linux, the flake's second system: glibc
# (default 2.42, the version of NixOS 26.05 and unstable) cross-built with
# Debian's aarch64 gcc 12 and patched with nix/glibc/ldcache-VERSION.patch,
# and a Nix-like fixture run under qemu-user.
#
# The fixture: 24 libraries, each in its own store directory and needing the
# two before it, and a program whose DT_RUNPATH lists their 24 directories
# (reversed), 8 empty store directories and glibc's.  `ldcache embed` writes
# the notes (the notes are computed without running anything of the target);
# qemu-aarch64 -strace counts the loader's failing openat/stat
# calls with the notes, and with the notes turned off (LD_LDCACHE_DISABLE=1:
# the upstream walk, as no pristine loader is built here).
#
# Usage: cross-aarch64.sh [VERSION]       (as root; ends with "N passed, M failed")
set -euo pipefail
unset LD_LIBRARY_PATH LD_PRELOAD LD_DEBUG LD_LDCACHE_DISABLE

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
cache=${LDCACHE_CACHE_DIR:-/var/cache/ldcache}
version=${1:-2.42}
triple=aarch64-linux-gnu
nlibs=24

log () { printf '%s\n' "$*" >&2; }
# shellcheck source=../lib.sh
source "$here/../lib.sh"

passed=0
failed=0

store_path () { echo "$T/store/$(printf %s "$1" | sha256sum | cut -c1-32)-$1"; }

# failing_lookups COMMAND...: the failing openat/stat calls qemu-user reports.
failing_lookups () {
  "$@" > /dev/null 2> "$T/strace.out" || true
  grep -cE '(openat|stat|statx|newfstatat|fstatat64)\(.* = -1 errno=' "$T/strace.out" || true
}

build_fixture () {
  local i libs=() dirs=() rp d glibc_lib
  glibc_lib=$(store_path glibc)/lib
  mkdir -p "$(dirname "$glibc_lib")"
  ln -s "$PATCHED_LIBDIR" "$glibc_lib"
  for ((i = 0; i < nlibs; i++)); do
    d=$(store_path "lib$i")/lib
    mkdir -p "$d"
    rp=$glibc_lib
    for lib in "${libs[@]: -2}"; do rp=$(dirname "$lib"):$rp; done
    "$cc" -shared -fPIC -o "$d/liblib$i.so" -Wl,-soname,"liblib$i.so" \
      -Wl,--enable-new-dtags,-rpath,"$rp" -Wl,--no-as-needed -x c - -x none \
      "${libs[@]: -2}" <<< "int val$i (void) { return $i; }"
    libs+=("$d/liblib$i.so")
    dirs=("$d" "${dirs[@]}")
  done
  for ((i = 0; i < 8; i++)); do
    dirs+=("$(store_path "data$i")/lib")
    mkdir -p "${dirs[-1]}"
  done
  local decls='' sum=0
  for ((i = 0; i < nlibs; i++)); do decls+="int val$i (void);"; sum+="+val$i ()"; done
  APP=$(store_path app)/bin/app
  mkdir -p "$(dirname "$APP")"
  "$cc" -o "$APP" -Wl,--dynamic-linker="$glibc_lib/ld-linux-aarch64.so.1" \
    -Wl,--enable-new-dtags,-rpath,"$(IFS=:; echo "${dirs[*]}"):$glibc_lib" \
    -Wl,--no-as-needed -x c - -x none "${libs[@]}" <<EOF
#include <stdio.h>
$decls
int main (void) { printf ("sum=%d\n", $sum); return 0; }
EOF
}

main () {
  [[ $(id -u) == 0 ]] || { log "run as root (apt-get)"; exit 2; }
  ensure_packages qemu-user binutils-aarch64-linux-gnu libc6-dev-arm64-cross \
    libgcc-12-dev-arm64-cross linux-libc-dev-arm64-cross
  local key value
  while IFS='=' read -r key value; do
    printf -v "$key" %s "$value"
  done < <(bash "$here/build-glibc.sh" --patched-only --host="$triple" "$version")
  [[ -x ${PATCHED_LDSO-} ]] || { log "build-glibc.sh failed"; exit 1; }
  cc=$(bash "$repo/tests/matrix/cross-gcc.sh" "$triple" arm64)
  (cd "$repo" && cargo build --release --locked --quiet --bin ldcache)

  mkdir -p "$cache"
  T=$(mktemp -d "$cache/cross.XXXXXX")
  [[ -n ${LDCACHE_KEEP-} ]] || trap 'rm -rf "$T"' EXIT
  build_fixture
  local out walk notes
  out=$(qemu-aarch64 "$APP")
  echo "  glibc $version for $triple, run by $(qemu-aarch64 --version | head -n 1)"
  echo "  $(qemu-aarch64 "$PATCHED_LDSO" --version | head -n 1)"
  walk=$(failing_lookups qemu-aarch64 -E LD_LDCACHE_DISABLE=1 -strace "$APP")
  check "ldcache embed writes every note" \
    grep -q "$((nlibs + 1)) cached" <("$repo/target/release/ldcache" embed --store-dir "$T/store" "$T/store" 2>&1)
  notes=$(failing_lookups qemu-aarch64 -strace "$APP")
  echo "  failing openat/stat calls: notes off $walk, notes on $notes"
  check "without notes the loader storms (> 100 failing calls)" [ "$walk" -gt 100 ]
  check "with notes the patched loader makes no failing call" [ "$notes" -eq 0 ]
  check "the program prints the same ($out)" [ "$(qemu-aarch64 "$APP")" = "$out" ]
  check "LD_DEBUG=libs reports the note" \
    grep -q "ldcache: using note of file=$APP" <(qemu-aarch64 -E LD_DEBUG=libs "$APP" 2>&1)
  echo "$passed passed, $failed failed"
  ((failed == 0))
}

main "$@"
