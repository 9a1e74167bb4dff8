#!/usr/bin/env bash
# Build a pristine and an ldcache-patched glibc of one release for the
# end-to-end tests.
#
# Usage: build-glibc.sh [--dev] [--patched-only] [--host=TRIPLE] VERSION   (e.g. 2.42)
#
# --host=TRIPLE cross-builds for TRIPLE (aarch64-linux-gnu) with Debian's gcc
# 12 cross compiler (tests/matrix/cross-gcc.sh); the result runs under
# qemu-user.
#
# The source is the release branch as nixpkgs builds it: the release tarball
# and upstream's stable-branch fixes (Debian's git-updates.diff, standing in
# for nixpkgs' <VERSION>-master.patch; see glibc-source.sh).  The patched
# variant adds nix/glibc/ldcache-VERSION.patch.
#
# Each variant is configured with --prefix=<its own install dir> and installed
# there without DESTDIR: the prefix is baked into ld.so (default search dirs,
# ld.so.cache path), so installing in place gives a loader that is usable from
# where it lies.  Layout under ${LDCACHE_CACHE_DIR:-/var/cache/ldcache}/glibc:
#
#   sources/VERSION/      the release tarball and Debian's patches
#   src-<key>/            the release-branch tree
#   <key>/install/        one variant; <key> hashes the tarball, the branch
#                         fixes, the ldcache patch (none for pristine) and the
#                         build recipe, so a rerun with the same inputs does
#                         nothing
#   <key>/patched-files/  the files the patch touches, as patched (the fuzz
#                         harness compiles the note parser from here)
#   dev-VERSION/          --dev: patched variant whose source and build dirs
#                         are kept; each run re-applies the patch, rewriting
#                         only files whose content changed, runs make and
#                         installs ld.so and libc.so.6 (~20 s after an edit of
#                         elf/dl-load.c)
#
# Build dirs of keyed variants are deleted after a successful install.
# --patched-only skips the pristine variant.  stdout carries only KEY=VALUE
# lines (also written to glibc/last-VERSION.env): GLIBC_VERSION,
# PRISTINE_LDSO, PRISTINE_LIBDIR (unless --patched-only), PATCHED_LDSO,
# PATCHED_LIBDIR, PATCHED_FILES.  Progress goes to stderr.
set -euo pipefail

usage="usage: $0 [--dev] [--patched-only] [--host=TRIPLE] VERSION"
dev=0
patched_only=0
host=
version=
for arg; do
  case $arg in
    --dev) dev=1 ;;
    --patched-only) patched_only=1 ;;
    --host=aarch64-linux-gnu) host=${arg#--host=} ;;
    [0-9]*.[0-9]*) version=$arg ;;
    *) echo "$usage" >&2; exit 2 ;;
  esac
done
[[ -n $version ]] || { echo "$usage" >&2; exit 2; }

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
cache=${LDCACHE_CACHE_DIR:-/var/cache/ldcache}
glibc_cache=$cache/glibc
patch_file=$root/nix/glibc/ldcache-$version.patch
configure_flags=(--disable-werror --disable-profile --disable-build-nscd
                 --disable-nscd --without-selinux MAKEINFO=:
                 PYTHON_PROG=/usr/bin/python3)
# What the keys hash besides the sources: how a variant is built.  Bump the
# number when the build steps below change in a way that changes the result.
ldso_name=ld-linux-x86-64.so.2
if [[ -n $host ]]; then
  # No C++ cross compiler: CXX=false makes configure build glibc without C++
  # (only tests need it), instead of taking the build machine's g++.
  configure_flags+=(--host="$host" --build=x86_64-linux-gnu CXX=false)
  ldso_name=ld-linux-aarch64.so.1
fi
recipe="1 configure ${configure_flags[*]}; make -j2; make install"

log () { printf 'build-glibc: %s\n' "$*" >&2; }
die () { log "error: $*"; exit 1; }
# shellcheck source=../lib.sh
source "$here/../lib.sh"
# shellcheck source=glibc-source.sh
source "$here/glibc-source.sh"

# Make the tree $1 equal to the release-branch tree plus the ldcache patch,
# rewriting only files whose content differs, so that make rebuilds only what
# a patch edit touched.  The patched files are also left in $2.
sync_patched_tree () {
  local tree=$1 out=$2 f scratch
  local -a files old
  scratch=$(mktemp -d)
  mapfile -t files < <(patch_files "$patch_file")
  for f in "${files[@]}"; do
    mkdir -p "$scratch/$(dirname "$f")"
    [[ -e $upstream/$f ]] && cp "$upstream/$f" "$scratch/$f"
  done
  patch -p1 -s -d "$scratch" < "$patch_file" || die "$patch_file does not apply"
  # Files an earlier version of the patch touched go back to upstream.
  [[ -e $tree/.ldcache-files ]] && mapfile -t old < "$tree/.ldcache-files"
  for f in "${old[@]}"; do
    [[ " ${files[*]} " == *" $f "* ]] && continue
    rm -f "$tree/$f"
    [[ -e $upstream/$f ]] && cp "$upstream/$f" "$tree/$f"
    log "restored $f"
  done
  for f in "${files[@]}"; do
    cmp -s "$scratch/$f" "$tree/$f" && continue
    mkdir -p "$tree/$(dirname "$f")"
    rm -f "$tree/$f"
    cp "$scratch/$f" "$tree/$f"
    log "updated $f"
  done
  printf '%s\n' "${files[@]}" > "$tree/.ldcache-files"
  rm -rf "$out"
  mv "$scratch" "$out"
}

# Configure (once) and make the source tree $1 in build dir $2 with prefix
# $3.  The output goes to build.log beside $2.
make_variant () {
  local src=$1 build=$2 prefix=$3 log
  log=$(dirname "$build")/build.log
  mkdir -p "$build"
  if [[ ! -e $build/config.status ]]; then
    log "configuring $build"
    (cd "$build" && env -u LD_LIBRARY_PATH ${cross_cc:+CC="$cross_cc"} \
       "$src/configure" --prefix="$prefix" "${configure_flags[@]}") > "$log" 2>&1 || { tail -n 30 "$log" >&2; die "configure failed"; }
  fi
  log "building glibc $version in $build (log: $log)"
  env -u LD_LIBRARY_PATH make -C "$build" -j2 >> "$log" 2>&1 ||
    { tail -n 40 "$log" >&2; die "build failed"; }
}

# Fail if the compiler warned about a file of the patch (build log $1):
# nixpkgs builds glibc with -Werror.
check_warnings () {
  local warnings
  warnings=$(grep -E '(dl-ldcache|dl-load)\.[ch]:[0-9]+:[0-9]+: warning' "$1") || return 0
  printf '%s\n' "$warnings" >&2
  die "the patched files compile with warnings"
}

# Install what build dir $1 built into its prefix.
install_variant () {
  env -u LD_LIBRARY_PATH make -C "$1" install >> "$(dirname "$1")/build.log" 2>&1 ||
    { tail -n 40 "$(dirname "$1")/build.log" >&2; die "install failed"; }
}

# Build the keyed variant in $glibc_cache/$1 unless it is complete.  $2 = 1
# for the patched variant.
build_keyed () {
  local dir=$glibc_cache/$1 patched=$2
  [[ -e $dir/.done ]] && { log "cached: $dir"; return; }
  rm -rf "$dir"
  mkdir -p "$dir"
  if ((patched)); then
    cp -a "$upstream" "$dir/src"
    sync_patched_tree "$dir/src" "$dir/patched-files"
    make_variant "$dir/src" "$dir/build" "$dir/install"
    check_warnings "$dir/build.log"
    install_variant "$dir/build"
    rm -rf "$dir/src"
  else
    make_variant "$upstream" "$dir/build" "$dir/install"
    install_variant "$dir/build"
  fi
  rm -rf "$dir/build"
  touch "$dir/.done"
}

# Rebuild the --dev variant incrementally.
build_dev () {
  local dir=$glibc_cache/dev-$version${host:+-$host}
  mkdir -p "$dir"
  [[ -e $dir/src ]] || cp -a "$upstream" "$dir/src"
  sync_patched_tree "$dir/src" "$dir/patched-files"
  make_variant "$dir/src" "$dir/build" "$dir/install"
  check_warnings "$dir/build.log"
  # make install takes a minute; after the first one, install only what the
  # patch changes: the loader and libc (struct link_map).
  if [[ -e $dir/install/lib/libc.so.6 ]]; then
    install -m 755 "$dir/build/elf/ld.so" "$dir/install/lib/$ldso_name"
    install -m 755 "$dir/build/libc.so" "$dir/install/lib/libc.so.6"
  else
    install_variant "$dir/build"
  fi
}

hash_of () { sha256sum | cut -c1-16; }

main () {
  ensure_packages gawk bison python3 make gcc binutils xz-utils patch dpkg coreutils \
    util-linux libc6-dev linux-libc-dev
  [[ -e $patch_file ]] || die "no loader patch for glibc $version ($patch_file)"
  cross_cc=
  if [[ -n $host ]]; then
    ensure_packages binutils-aarch64-linux-gnu libc6-dev-arm64-cross \
      libgcc-12-dev-arm64-cross linux-libc-dev-arm64-cross
    cross_cc=$(bash "$root/tests/matrix/cross-gcc.sh" "$host" arm64)
  fi
  mkdir -p "$glibc_cache"
  exec 9> "$glibc_cache/.lock"
  flock 9

  glibc_source "$version"
  local source_key pristine_key patched_key
  source_key=$( { echo "$version $recipe"; hash_of < "$GLIBC_ORIG"
                  if [[ -e $GLIBC_PATCHES/git-updates.diff ]]; then
                    hash_of < "$GLIBC_PATCHES/git-updates.diff"
                  fi; } | hash_of)
  log "glibc $version: $(basename "$GLIBC_ORIG"), branch fixes from ${GLIBC_REVISION:-none}"

  upstream=$glibc_cache/src-$source_key
  if [[ ! -d $upstream ]]; then
    log "unpacking the release branch into $upstream"
    rm -rf "$upstream.tmp"
    unpack_release "$upstream.tmp"
    release_branch "$upstream.tmp"
    mv "$upstream.tmp" "$upstream"
  fi

  # The patched variant first: with --dev, that is the one being worked on.
  pristine_key=$source_key
  patched_key=$( { echo "$source_key"; cat "$patch_file"; } | hash_of)
  local patched_dir=$glibc_cache/$patched_key
  if ((dev)); then
    build_dev
    patched_dir=$glibc_cache/dev-$version${host:+-$host}
  else
    build_keyed "$patched_key" 1
  fi
  ((patched_only)) || build_keyed "$pristine_key" 0

  local ldso=lib/$ldso_name
  {
    echo "GLIBC_VERSION=$version"
    if ((!patched_only)); then
      echo "PRISTINE_LDSO=$glibc_cache/$pristine_key/install/$ldso"
      echo "PRISTINE_LIBDIR=$glibc_cache/$pristine_key/install/lib"
    fi
    echo "PATCHED_LDSO=$patched_dir/install/$ldso"
    echo "PATCHED_LIBDIR=$patched_dir/install/lib"
    echo "PATCHED_FILES=$patched_dir/patched-files"
  } | tee "$glibc_cache/last-$version.env"
}

main
