#!/usr/bin/env bash
# Check that every loader patch (nix/glibc/ldcache-VERSION.patch) applies
# where users apply it, with `patch -p1` and its default fuzz:
#
#   release   the release tarball alone
#   branch    the release branch (tarball + Debian's git-updates.diff), with
#             no fuzz at all: the patch is made against it
#   nixpkgs   the release branch, then nixpkgs' own glibc patches in the
#             order of nixpkgs' common.nix (both from ../shared/nixpkgs-glibc
#             beside the checkout: third-party test data, read, never copied);
#             Debian's git-updates.diff stands in for nixpkgs'
#             <VERSION>-master.patch, which is not there
#   debian    Debian's source: the tarball and Debian's whole patch series
#
# A nixpkgs patch that does not apply to a version is reported (they are the
# versions nixpkgs has for 2.42); one that touches a file the loader patch
# touches must apply, or the check would prove nothing.  Prints one line per
# check and ends with "N passed, M failed".
#
# Usage: apply-patches.sh [VERSION...]   (default: every version with a patch)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
cache=${LDCACHE_CACHE_DIR:-/var/cache/ldcache}
nixpkgs_glibc=$root/../shared/nixpkgs-glibc

log () { printf '%s\n' "$*" >&2; }
die () { log "apply-patches: error: $*"; exit 1; }
# shellcheck source=../lib.sh
source "$here/../lib.sh"
# shellcheck source=glibc-source.sh
source "$here/glibc-source.sh"

passed=0
failed=0

# Print nixpkgs' glibc patches in the order common.nix applies them
# (unconditional ones only; the first, the release branch, is not there).
nixpkgs_series () {
  sed -n '/^ *patches = \[/,/^ *\]/p' "$nixpkgs_glibc/common.nix" |
    sed -n 's,^ *\./\([^ ]*\.patch\)$,\1,p'
}

# apply_to TREE PATCH [FUZZ]: apply PATCH to TREE, quietly; true on success.
apply_to () {
  patch -p1 -s -f --no-backup-if-mismatch ${3:+--fuzz=$3} -d "$1" < "$2" > /dev/null 2>&1
}

# Apply nixpkgs' series to TREE $1 for VERSION $2, hunk by hunk as far as
# each patch applies.  Print what did not apply, and set touches_ours when a
# failed hunk is in a file the loader patch changes: the check is about those.
apply_nixpkgs () {
  local tree=$1 version=$2 p f
  local -a ours
  mapfile -t ours < <(patch_files "$patch")
  while read -r p; do
    # The release branch (git-updates.diff) stands in for <version>-master.patch.
    [[ $p == [0-9]*-master.patch ]] && continue
    [[ -e $nixpkgs_glibc/$p ]] || die "$p is not in $nixpkgs_glibc"
    while read -r f; do
      printf '  nixpkgs %s: a hunk in %s does not apply to %s\n' "$p" "$f" "$version"
      if [[ " ${ours[*]} " == *" $f "* ]]; then touches_ours=1; fi
    done < <(patch -p1 -f --no-backup-if-mismatch -r - -d "$tree" < "$nixpkgs_glibc/$p" 2>&1 |
             awk '/^patching file / { f = $3 } /^Hunk #[0-9]+ FAILED/ { print f }' | sort -u)
  done < <(nixpkgs_series)
}

check_version () {
  local version=$1 work=$T/$1
  patch=$root/nix/glibc/ldcache-$version.patch
  glibc_source "$version"
  log "glibc $version: $(basename "$GLIBC_ORIG"), Debian patches from ${GLIBC_REVISION:-nowhere}"

  # Trees are hard-linked copies of one unpacked tarball: patch replaces the
  # files it changes instead of writing into them.
  unpack_release "$work/tarball"
  touch "$work/unpacked"
  cp -al "$work/tarball" "$work/release"
  check "$version: applies to the release tarball" apply_to "$work/release" "$patch"

  cp -al "$work/tarball" "$work/branch"
  release_branch "$work/branch"
  cp -al "$work/branch" "$work/nixpkgs"
  check "$version: applies to the release branch without fuzz" apply_to "$work/branch" "$patch" 0

  touches_ours=0
  apply_nixpkgs "$work/nixpkgs" "$version"
  check "$version: nixpkgs' patches that touch the loader patch's files apply" \
    [ "$touches_ours" -eq 0 ]
  check "$version: applies after nixpkgs' glibc patches" apply_to "$work/nixpkgs" "$patch"

  if [[ -n $GLIBC_PATCHES ]]; then
    cp -al "$work/tarball" "$work/debian"
    local p ok=1
    while read -r p; do
      apply_to "$work/debian" "$GLIBC_PATCHES/$p" || { log "  Debian's $p does not apply"; ok=0; }
    done < <(grep -v -e '^#' -e '^[[:space:]]*$' "$GLIBC_PATCHES/series" | awk '{ print $1 }')
    check "$version: Debian $GLIBC_REVISION's series applies" [ "$ok" -eq 1 ]
    check "$version: applies to Debian $GLIBC_REVISION's source" apply_to "$work/debian" "$patch"
  else
    echo "  glibc $version: the mirror has no Debian patches; release branch = release tarball"
  fi
  # The tarball must come out as it went in: no patch wrote through a link.
  check "$version: no patch wrote through a hard link" \
    [ -z "$(find "$work/tarball" -type f -newer "$work/unpacked" | head -n 1)" ]
  rm -rf "$work"
}

main () {
  ensure_packages patch xz-utils dpkg
  [[ -e $nixpkgs_glibc/common.nix ]] || die "no $nixpkgs_glibc/common.nix"
  local versions=("$@")
  if ((${#versions[@]} == 0)); then
    local p
    for p in "$root"/nix/glibc/ldcache-*.patch; do
      p=${p##*/ldcache-}
      versions+=("${p%.patch}")
    done
  fi
  check "the patches are generated from nix/glibc/src" "$root/nix/glibc/generate.sh" --check
  mkdir -p "$cache"
  T=$(mktemp -d "$cache/apply.XXXXXX")
  trap 'rm -rf "$T"' EXIT
  local version
  for version in "${versions[@]}"; do check_version "$version"; done
  echo "$passed passed, $failed failed"
  ((failed == 0))
}

main "$@"
