#!/usr/bin/env bash
# Build a pristine and an ldcache-patched glibc 2.43 for the end-to-end tests.
#
# Usage: build-glibc.sh [--dev]
#
# Each variant is configured with --prefix=<its own install dir> and installed
# there without DESTDIR: the prefix is baked into ld.so (default search dirs,
# ld.so.cache path), so installing in place gives a loader that is usable from
# where it lies.  Layout under ${LDCACHE_CACHE_DIR:-/var/cache/ldcache}/glibc:
#
#   src-<tarball hash>/   upstream 2.43 tree (Debian's patches reversed)
#   <key>/install/        one variant; <key> hashes the tarball, the patches
#                         (none for pristine), the configure flags and this
#                         script, so a rerun with the same inputs does nothing
#   <key>/patched-files/  the files the patches touch, as patched (the fuzz
#                         harness compiles the note parser from here)
#   dev/                  --dev: patched variant whose source and build dirs
#                         are kept; each run re-applies nix/glibc/*.patch,
#                         rewriting only files whose content changed, runs
#                         make and installs ld.so and libc.so.6 (~20 s after
#                         an edit of elf/dl-load.c)
#
# Build dirs of keyed variants are deleted after a successful install.
# stdout carries only KEY=VALUE lines (also written to glibc/last.env):
# PRISTINE_LDSO, PRISTINE_LIBDIR, PATCHED_LDSO, PATCHED_LIBDIR,
# PATCHED_FILES.  Progress goes to stderr.
set -euo pipefail

dev=0
case ${1-} in
  --dev) dev=1 ;;
  '') ;;
  *) echo "usage: $0 [--dev]" >&2; exit 2 ;;
esac

script=$(readlink -f "${BASH_SOURCE[0]}")
root=$(cd "$(dirname "$script")/../.." && pwd)
cache=${LDCACHE_CACHE_DIR:-/var/cache/ldcache}/glibc
shopt -s nullglob
patches=("$root"/nix/glibc/*.patch)
shopt -u nullglob
configure_flags=(--disable-werror --disable-profile --disable-build-nscd
                 --disable-nscd --without-selinux MAKEINFO=:
                 PYTHON_PROG=/usr/bin/python3)
# Debian patches that stay applied: upstream's stable-branch fixes, and the
# removal of manual/ (which the source package no longer ships).
keep_debian_patches=(git-updates.diff all/local-remove-manual.diff)

log () { printf 'build-glibc: %s\n' "$*" >&2; }
die () { log "error: $*"; exit 1; }

# Install the build prerequisites that are missing (needs root and apt).
ensure_tools () {
  local -A need=([gawk]=gawk [bison]=bison [/usr/bin/python3]=python3
                 [make]=make [gcc]=gcc [ld]=binutils [xz]=xz-utils
                 [patch]=patch [dpkg-deb]=dpkg [sha256sum]=coreutils
                 [flock]=util-linux [/usr/include/stdio.h]=libc6-dev
                 [/usr/include/linux/version.h]=linux-libc-dev)
  local tool missing=()
  for tool in "${!need[@]}"; do
    if [[ $tool == /* ]]; then
      [[ -e $tool ]] || missing+=("${need[$tool]}")
    else
      command -v "$tool" > /dev/null || missing+=("${need[$tool]}")
    fi
  done
  ((${#missing[@]})) || return 0
  [[ $(id -u) == 0 ]] || die "missing packages (run as root): ${missing[*]}"
  log "installing ${missing[*]}"
  apt_install "${missing[@]}"
}

# apt-get install $@, refreshing the package lists first if that fails (a
# fresh container may have none).
apt_install () {
  local install=(env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq
                 --no-install-recommends "$@")
  "${install[@]}" > /dev/null 2>&1 ||
    { apt-get update -qq >&2 && "${install[@]}" > /dev/null; }
}

# Print the URI of the system's apt source for its own release: a private
# sources list with that URI and suite sid reaches sid without changing the
# system's configuration.
system_apt_uri () {
  local codename
  codename=$(. /etc/os-release && echo "$VERSION_CODENAME")
  awk -v want="$codename" '
    FNR == 1 || /^[[:space:]]*$/ { if (found) exit; uri = "" }
    /^URIs:/ { uri = $2 }
    /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == want) found = 1 }
    END { if (found) print uri }' /etc/apt/sources.list.d/*.sources
}

# Download sid's glibc-source 2.43-* into $cache/deb and print its path.
download_from_sid () {
  local apt=$cache/apt uri version
  uri=$(system_apt_uri)
  [[ -n $uri ]] || die "no URIs: line for this release in /etc/apt/sources.list.d"
  mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial" "$cache/deb"
  echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $uri sid main" \
    > "$apt/sid.list"
  local opts=(-o "Dir::Etc::sourcelist=$apt/sid.list" -o Dir::Etc::sourceparts=-
              -o "Dir::State::Lists=$apt/lists" -o "Dir::Cache=$apt/cache"
              -o APT::Sandbox::User=root)
  log "querying sid through $uri"
  apt-get "${opts[@]}" -qq update >&2
  # sid moves on: take whatever 2.43 revision it has now.
  version=$(apt-cache "${opts[@]}" show glibc-source 2> /dev/null |
            awk '/^Version: 2\.43-/ { print $2; exit }')
  [[ -n $version ]] || return 1
  (cd "$cache/deb" && apt-get "${opts[@]}" -qq download "glibc-source=$version" >&2)
  echo "$cache/deb/glibc-source_${version//:/%3a}_all.deb"
}

# Print the glibc-source .deb to use.  The copy in shared/ beside the
# checkout wins when it exists: it never changes (so the cache key does not
# move whenever sid uploads a new revision) and needs no network.  Only
# without it is sid asked.
source_deb () {
  local shared
  shared=$(ls "$root"/../shared/glibc/glibc-source_2.43-*_all.deb 2> /dev/null |
           sort -V | tail -n 1)
  if [[ -n $shared ]]; then
    echo "$shared"
  else
    download_from_sid || die "sid has no glibc-source 2.43 and there is no ../shared/glibc copy"
  fi
}

# Create the upstream tree $1 from the unpacked .deb in $2 by reversing
# Debian's series (last patch first), except the patches we keep.
make_upstream_tree () {
  local dest=$1 deb=$2 tmp p
  tmp=$dest.tmp
  rm -rf "$tmp"
  mkdir -p "$tmp"
  log "unpacking upstream tree into $dest"
  tar -xJf "$deb/usr/src/glibc/glibc-2.43.tar.xz" -C "$tmp" --strip-components=1
  grep -v -e '^#' -e '^[[:space:]]*$' "$deb/usr/src/glibc/debian/patches/series" |
    awk '{ print $1 }' | tac | while read -r p; do
      [[ " ${keep_debian_patches[*]} " == *" $p "* ]] && continue
      patch -R -p1 -s --no-backup-if-mismatch -d "$tmp" \
        < "$deb/usr/src/glibc/debian/patches/$p" ||
        die "cannot reverse debian/patches/$p"
    done
  mv "$tmp" "$dest"
}

# Make the tree $1 equal to the upstream tree plus the ldcache patches,
# rewriting only files whose content differs, so that make rebuilds only what
# a patch edit touched.  The patched files are also left in $2.
sync_patched_tree () {
  local tree=$1 out=$2 f p scratch
  local -a files old
  scratch=$(mktemp -d)
  mapfile -t files < <(sed -n 's,^+++ b/\([^[:space:]]*\).*,\1,p' "${patches[@]}" | sort -u)
  for f in "${files[@]}"; do
    mkdir -p "$scratch/$(dirname "$f")"
    [[ -e $upstream/$f ]] && cp "$upstream/$f" "$scratch/$f"
  done
  for p in "${patches[@]}"; do
    patch -p1 -s -d "$scratch" < "$p" || die "$p does not apply"
  done
  # Files an earlier version of the patches touched go back to upstream.
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
    (cd "$build" && env -u LD_LIBRARY_PATH "$src/configure" --prefix="$prefix" \
       "${configure_flags[@]}") > "$log" 2>&1 || { tail -n 30 "$log" >&2; die "configure failed"; }
  fi
  log "building in $build (log: $log)"
  env -u LD_LIBRARY_PATH make -C "$build" -j2 >> "$log" 2>&1 ||
    { tail -n 40 "$log" >&2; die "build failed"; }
}

# Install what build dir $1 built into its prefix.
install_variant () {
  env -u LD_LIBRARY_PATH make -C "$1" install >> "$(dirname "$1")/build.log" 2>&1 ||
    { tail -n 40 "$(dirname "$1")/build.log" >&2; die "install failed"; }
}

# Build the keyed variant in $cache/$1 unless it is complete.  $2 = 1 for the
# patched variant.
build_keyed () {
  local dir=$cache/$1 patched=$2
  [[ -e $dir/.done ]] && { log "cached: $dir"; return; }
  rm -rf "$dir"
  mkdir -p "$dir"
  if ((patched)); then
    cp -a "$upstream" "$dir/src"
    sync_patched_tree "$dir/src" "$dir/patched-files"
    make_variant "$dir/src" "$dir/build" "$dir/install"
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
  local dir=$cache/dev
  mkdir -p "$dir"
  [[ -e $dir/src ]] || cp -a "$upstream" "$dir/src"
  sync_patched_tree "$dir/src" "$dir/patched-files"
  make_variant "$dir/src" "$dir/build" "$dir/install"
  # make install takes a minute; after the first one, install only what the
  # patch changes: the loader and libc (struct link_map).
  if [[ -e $dir/install/lib/libc.so.6 ]]; then
    install -m 755 "$dir/build/elf/ld.so" "$dir/install/lib/ld-linux-x86-64.so.2"
    install -m 755 "$dir/build/libc.so" "$dir/install/lib/libc.so.6"
  else
    install_variant "$dir/build"
  fi
}

hash_of () { sha256sum | cut -c1-16; }

main () {
  ensure_tools
  mkdir -p "$cache"
  exec 9> "$cache/.lock"
  flock 9

  local deb tarhash pristine_key patched_key
  deb=$(source_deb)
  unpacked=$(mktemp -d)
  trap 'rm -rf "$unpacked"' EXIT
  dpkg-deb -x "$deb" "$unpacked"
  tarhash=$(hash_of < "$unpacked/usr/src/glibc/glibc-2.43.tar.xz")
  log "source: $deb (tarball $tarhash)"

  upstream=$cache/src-$tarhash
  [[ -d $upstream ]] || make_upstream_tree "$upstream" "$unpacked"

  # The patched variant first: with --dev, that is the one being worked on.
  ((${#patches[@]})) || die "no patch in $root/nix/glibc"
  pristine_key=$( { echo "$tarhash ${configure_flags[*]}"; cat "$script"; } | hash_of)
  patched_key=$( { echo "$pristine_key"; cat "${patches[@]}"; } | hash_of)
  local patched_dir=$cache/$patched_key
  if ((dev)); then
    build_dev
    patched_dir=$cache/dev
  else
    build_keyed "$patched_key" 1
  fi
  build_keyed "$pristine_key" 0

  local ldso=lib/ld-linux-x86-64.so.2
  {
    echo "PRISTINE_LDSO=$cache/$pristine_key/install/$ldso"
    echo "PRISTINE_LIBDIR=$cache/$pristine_key/install/lib"
    echo "PATCHED_LDSO=$patched_dir/install/$ldso"
    echo "PATCHED_LIBDIR=$patched_dir/install/lib"
    echo "PATCHED_FILES=$patched_dir/patched-files"
  } | tee "$cache/last.env"
}

main
