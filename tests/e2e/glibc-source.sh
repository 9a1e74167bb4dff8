# shellcheck shell=bash
# Shell functions that fetch a glibc release and Debian's patches for it
# (sourced by build-glibc.sh and apply-patches.sh; the caller defines `log`,
# `die` and `cache`).
#
# glibc_source VERSION sets
#   GLIBC_ORIG      the release tarball (Debian's glibc_VERSION.orig.tar.xz:
#                   upstream's release without manual/)
#   GLIBC_PATCHES   a directory with Debian's `series` and patches for that
#                   release, or empty when no revision's patches can be had
#   GLIBC_REVISION  the Debian revision GLIBC_PATCHES comes from
# Debian's `git-updates.diff` in GLIBC_PATCHES is upstream's release branch
# (what nixpkgs applies first as `<VERSION>-master.patch`).
#
# Files come from the newest Debian revision of VERSION that the system's
# own mirror still serves, in any of trixie, forky, sid and experimental,
# through a private apt configuration (the system's is left as it is), and
# are kept under $cache/glibc/sources/VERSION.  A glibc-source .deb beside
# the checkout (../shared/glibc) serves when the mirror has none.

# Print the files patch $1 changes, each once (its "+++ DIR/FILE" lines, for -p1).
patch_files () { sed -n 's,^+++ [^/]*/\([^[:space:]]*\).*,\1,p' "$1" | sort -u; }

# Print the URI of the system's apt source for its own release.
system_apt_uri () {
  local codename
  codename=$(. /etc/os-release && echo "$VERSION_CODENAME")
  awk -v want="$codename" '
    FNR == 1 || /^[[:space:]]*$/ { if (found) exit; uri = "" }
    /^URIs:/ { uri = $2 }
    /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == want) found = 1 }
    END { if (found) print uri }' /etc/apt/sources.list.d/*.sources
}

# Set the array apt_opts to a private apt configuration for Debian's newer
# suites, and refresh its package lists once per process.
debian_apt () {
  ((${#apt_opts[@]})) && return
  local dir=$cache/apt uri suite
  uri=$(system_apt_uri)
  [[ -n $uri ]] || die "no URIs: line for this release in /etc/apt/sources.list.d"
  mkdir -p "$dir/lists/partial" "$dir/cache/archives/partial"
  for suite in trixie forky sid experimental; do
    for type in deb deb-src; do
      echo "$type [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $uri $suite main"
    done
  done > "$dir/sources.list"
  apt_opts=(-o "Dir::Etc::sourcelist=$dir/sources.list" -o Dir::Etc::sourceparts=-
            -o "Dir::State::Lists=$dir/lists" -o "Dir::Cache=$dir/cache"
            -o APT::Sandbox::User=root)
  log "reading Debian's package lists through $uri"
  apt-get "${apt_opts[@]}" -qq update >&2
}
apt_opts=()

# Print the Debian revisions of glibc VERSION $2 in the index of $1 (showsrc
# for source packages, show for glibc-source), newest first.
debian_revisions () {
  apt-cache "${apt_opts[@]}" "$1" "$( [[ $1 == showsrc ]] && echo glibc || echo glibc-source)" \
    2> /dev/null | awk -v want="$2-" '/^Version:/ && index($2, want) == 1 { print $2 }' |
    sort -Vru
}

# Extract debian/patches from the glibc-source .deb $1 into $2.
patches_from_deb () {
  local tmp
  tmp=$(mktemp -d)
  dpkg-deb -x "$1" "$tmp" && mv "$tmp/usr/src/glibc/debian/patches" "$2"
  rm -rf "$tmp"
}

# Download what glibc_source needs for VERSION $1 into directory $2.
download_glibc () {
  local version=$1 dir=$2 rev deb
  debian_apt
  mkdir -p "$dir/download"
  # A revision whose files the mirror no longer has fails; its other files
  # (the release tarball, shared by all revisions) may still come.
  for rev in $(debian_revisions showsrc "$version"); do
    (cd "$dir/download" && apt-get "${apt_opts[@]}" -qq source --download-only "glibc=$rev" \
      > /dev/null 2>&1) || log "glibc $rev: the mirror lacks some of its files"
    if [[ -e $dir/download/glibc_$rev.debian.tar.xz && ! -e $dir/patches ]]; then
      tar -xJf "$dir/download/glibc_$rev.debian.tar.xz" -C "$dir/download" debian/patches
      mv "$dir/download/debian/patches" "$dir/patches"
      echo "$rev" > "$dir/revision"
    fi
    [[ -e $dir/patches && -e $dir/download/glibc_$version.orig.tar.xz ]] && break
  done
  [[ -e $dir/download/glibc_$version.orig.tar.xz ]] ||
    die "the mirror has no glibc_$version.orig.tar.xz"
  mv "$dir/download/glibc_$version.orig.tar.xz" "$dir/"
  if [[ ! -e $dir/patches ]]; then
    for rev in $(debian_revisions show "$version"); do
      (cd "$dir/download" && apt-get "${apt_opts[@]}" -qq download "glibc-source=$rev" \
        > /dev/null 2>&1) || continue
      patches_from_deb "$dir/download/glibc-source_${rev//:/%3a}_all.deb" "$dir/patches"
      echo "$rev" > "$dir/revision"
      break
    done
  fi
  local debs=("$root"/../shared/glibc/glibc-source_"$version"-*_all.deb)
  deb=${debs[-1]}
  if [[ ! -e $dir/patches && -e $deb ]]; then
    patches_from_deb "$deb" "$dir/patches"
    basename "$deb" | sed 's/^glibc-source_\(.*\)_all\.deb$/\1/' > "$dir/revision"
  fi
  rm -rf "$dir/download"
}

glibc_source () {
  local version=$1 dir=$cache/glibc/sources/$1
  if [[ ! -e $dir/.done ]]; then
    rm -rf "$dir"
    download_glibc "$version" "$dir"
    touch "$dir/.done"
  fi
  GLIBC_ORIG=$dir/glibc_$version.orig.tar.xz
  GLIBC_PATCHES=
  GLIBC_REVISION=
  if [[ -e $dir/patches ]]; then
    GLIBC_PATCHES=$dir/patches
    GLIBC_REVISION=$(< "$dir/revision")
  else
    log "no Debian patches for glibc $version: the release tarball stands in for its release branch"
  fi
}

# Turn the unpacked release tarball in directory $1 into its release branch
# (glibc_source must have run): Debian's git-updates.diff, and a
# manual/Makefile that builds nothing in place of the manual the tarball lacks.
release_branch () {
  local tree=$1
  if [[ -e $GLIBC_PATCHES/git-updates.diff ]]; then
    patch -p1 -s --no-backup-if-mismatch -d "$tree" < "$GLIBC_PATCHES/git-updates.diff" ||
      die "git-updates.diff of $GLIBC_REVISION does not apply"
  fi
  mkdir -p "$tree/manual"
  printf 'subdir := manual\ninclude ../Rules\n' > "$tree/manual/Makefile"
}

# Unpack the release tarball of glibc_source into the new directory $1.
unpack_release () {
  mkdir -p "$1"
  tar -xJf "$GLIBC_ORIG" -C "$1" --strip-components=1
}
