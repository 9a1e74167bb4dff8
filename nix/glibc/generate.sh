#!/usr/bin/env bash
# Write nix/glibc/ldcache-<version>.patch for every glibc version that has a
# loader hook in src/, from the parts in src/:
#
#   description        the patch's commit message
#   dl-ldcache.c, .h   the note reader: the same new files for every version
#   Makefile.diff      elf/Makefile, adds dl-ldcache to rtld-routines   } same for
#   link.h.diff        include/link.h, two fields after l_serial        } every version
#   dl-load-<V>.diff   elf/dl-load.c of glibc <V>: the hook, with that version's
#                      context (release branch, as nixpkgs' <V>-master.patch leaves it)
#
# Usage: generate.sh [--check]
# With --check nothing is written; the exit status is 1 if a committed patch
# differs from what would be generated, or if the hooks of two versions add or
# remove different lines (only their context may differ).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
src=$here/src
check=0
case ${1-} in
  --check) check=1 ;;
  '') ;;
  *) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac

# Print a diff that creates file $2 (a path in the glibc tree) from $1.
new_file_diff () {
  diff -u --label "a/$2" --label "b/$2" /dev/null "$1" || [[ $? == 1 ]]
}

# Print the patch for the version whose hook is $1.
patch_for () {
  cat "$src/description"
  echo
  cat "$src/Makefile.diff"
  new_file_diff "$src/dl-ldcache.c" elf/dl-ldcache.c
  new_file_diff "$src/dl-ldcache.h" elf/dl-ldcache.h
  cat "$1"
  cat "$src/link.h.diff"
}

# Print the lines hook $1 adds or removes, without its file names.
hook_changes () {
  grep -E '^[-+]' "$1" | grep -vE '^(---|\+\+\+) '
}

status=0
first=
for hook in "$src"/dl-load-*.diff; do
  version=${hook##*/dl-load-}
  version=${version%.diff}
  out=$here/ldcache-$version.patch
  if [[ -z $first ]]; then
    first=$hook
  elif ! cmp -s <(hook_changes "$first") <(hook_changes "$hook"); then
    echo "generate.sh: ${hook##*/} changes other lines than ${first##*/}" >&2
    status=1
  fi
  if ((check)); then
    cmp -s <(patch_for "$hook") "$out" ||
      { echo "generate.sh: ${out##*/} is not generated from src/ (run nix/glibc/generate.sh)" >&2; status=1; }
  else
    patch_for "$hook" > "$out"
  fi
done
# A patch without a hook is left over from a version no longer supported.
for out in "$here"/ldcache-*.patch; do
  version=${out##*/ldcache-}
  version=${version%.patch}
  [[ -e $src/dl-load-$version.diff ]] && continue
  echo "generate.sh: ${out##*/} has no src/dl-load-$version.diff" >&2
  status=1
done
exit $status
