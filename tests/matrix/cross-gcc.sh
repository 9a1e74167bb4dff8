#!/usr/bin/env bash
# Prints the path of Debian's gcc 12 cross compiler for TRIPLE, unpacked into a private prefix
# (not installed), for cross.sh.
#
# Why not installed: in Debian 12 every gcc-12-TRIPLE declares "Conflicts: gcc-multilib", which the
# project's other tests (and native.sh's i386 builds) need, so `apt-get install` would remove it.
# The compiler itself is two packages, gcc-12-TRIPLE (driver, collect2, lto) and cpp-12-TRIPLE
# (cc1); everything else it depends on is installed: host libraries (through gcc-12), the cross
# binutils, cross glibc and cross libgcc (binutils-TRIPLE, libc6-dev-ARCH-cross and
# libgcc-12-dev-ARCH-cross, which cross.sh installs). The two are fetched with `apt-get download`
# (the system's apt sources) and unpacked with `dpkg-deb -x` into
#   ${LDCACHE_CACHE_DIR:-/var/cache/ldcache}/cross-gcc/TRIPLE-KEY/
# KEY hashes the .deb file names (name, version), the installed libgcc-12-dev-ARCH-cross version
# and LAYOUT below, so a new package version gets a new prefix. The prefix is built in a temporary
# directory beside it and renamed into place once a test compilation succeeds, under a lock, so an
# interrupted run leaves no half-made prefix (and the next run deletes its temporary directory).
#
# gcc is relocatable: PREFIX/usr/bin/TRIPLE-gcc-12 runs cc1 and collect2 from
# PREFIX/usr/lib/gcc-cross/TRIPLE/12/ and looks for everything else relative to that directory, as
# in an installed tree: libgcc, crt*.o and its own headers (stddef.h, ...) in the same directory,
# glibc's headers and startup files and binutils' as and ld in PREFIX/usr/TRIPLE/{include,lib,bin}.
# Those belong to the installed packages, so the prefix gets symbolic links to them: one per entry
# of /usr/lib/gcc-cross/TRIPLE/12/ that the .debs do not have, and PREFIX/usr/TRIPLE -> /usr/TRIPLE.
# No -B, --sysroot or GCC_EXEC_PREFIX is needed then.
#
# usage: tests/matrix/cross-gcc.sh TRIPLE ARCH   e.g. aarch64-linux-gnu arm64 (ARCH: Debian's name)
set -euo pipefail

LAYOUT=1 # change when the prefix is laid out differently
triple=${1:?usage: cross-gcc.sh TRIPLE ARCH}
arch=${2:?usage: cross-gcc.sh TRIPLE ARCH}
packages=("gcc-12-$triple" "cpp-12-$triple")
libgcc=/usr/lib/gcc-cross/$triple/12
base=${LDCACHE_CACHE_DIR:-/var/cache/ldcache}/cross-gcc

log() { echo "cross-gcc: $*" >&2; }

libgcc_version=$(dpkg-query -W -f='${Version}' "libgcc-12-dev-$arch-cross" 2>/dev/null) || {
  log "libgcc-12-dev-$arch-cross is not installed"
  exit 1
}

# The .deb file names apt would download (PACKAGE_VERSION_ARCH.deb); apt-get update if it knows none.
deb_names() { apt-get download --print-uris "${packages[@]}" 2>/dev/null | awk '{print $2}'; }
debs=$(deb_names) || debs=""
if [ -z "$debs" ]; then
  apt-get update -qq >&2
  debs=$(deb_names)
fi
key=$(printf 'layout %s\nlibgcc %s\n%s\n' "$LAYOUT" "$libgcc_version" "$debs" | sha256sum)
key=${key:0:16}
prefix=$base/$triple-$key
driver=$prefix/usr/bin/$triple-gcc-12

mkdir -p "$base"
exec 9>"$base/lock"
flock 9
if [ ! -x "$driver" ]; then
  rm -rf "$base"/.tmp-* # left by an interrupted run (they are only made under the lock)
  tmp=$(mktemp -d "$base/.tmp-$triple.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  log "downloading $(echo "$debs" | tr '\n' ' ')into $prefix"
  # apt-get warns that it cannot download as _apt into this root-only directory; harmless.
  if ! (cd "$tmp" && apt-get download -q=2 "${packages[@]}") >"$tmp/apt.log" 2>&1; then
    cat "$tmp/apt.log" >&2
    exit 1
  fi
  for deb in "$tmp"/*.deb; do dpkg-deb -x "$deb" "$tmp/root"; done
  for f in "$libgcc"/*; do
    [ -e "$tmp/root$libgcc/${f##*/}" ] || ln -s "$f" "$tmp/root$libgcc/"
  done
  ln -s "/usr/$triple" "$tmp/root/usr/$triple"
  # the relocated driver must compile and link a program before the prefix is used
  echo 'int main(void) { return 0; }' >"$tmp/t.c"
  "$tmp/root/usr/bin/$triple-gcc-12" -o "$tmp/t" "$tmp/t.c"
  rm -rf "$prefix"
  mv -T "$tmp/root" "$prefix"
fi
echo "$driver"
