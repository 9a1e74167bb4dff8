#!/usr/bin/env bash
# Do two ldcache binaries write the same bytes? Each embeds a fresh copy of the corpus store (at
# the path its RUNPATHs name, under the corpus lock), then every file's sha256 is compared. For
# refactors that must not change what the tool writes.
#
# Usage: tests/corpus/same-bytes.sh OLD_LDCACHE NEW_LDCACHE   (as root; prepares the corpus if
# needed, as tests/corpus/run.sh does). Prints the number of files compared and exits 1, listing
# them, when any differs.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
old=${1:?usage: same-bytes.sh OLD_LDCACHE NEW_LDCACHE}
new=${2:?usage: same-bytes.sh OLD_LDCACHE NEW_LDCACHE}
log () { printf 'same-bytes: %s\n' "$*" >&2; }

root=$("$here/prepare.sh")
store=$root/store
exec 9> "$root/lock"
flock 9
work=$(mktemp -d)
trap 'rm -rf "$work" "$store"' EXIT

# embed_with LDCACHE OUT: the sums of the store after LDCACHE embedded a fresh copy of it.
embed_with () {
  rm -rf "$store"
  cp -a "$root/pristine" "$store"
  "$1" embed --store-dir "$store" "$store" 2> "$work/embed.log" ||
    { cat "$work/embed.log" >&2; exit 1; }
  log "$(tail -n 1 "$work/embed.log")"
  (cd "$store" && find . -type f -print0 | sort -z | xargs -0 -n 256 sha256sum) > "$2"
}

embed_with "$old" "$work/old.sums"
embed_with "$new" "$work/new.sums"
files=$(wc -l < "$work/old.sums")
if ! diff "$work/old.sums" "$work/new.sums" > "$work/diff"; then
  echo "files that differ:"
  grep '^>' "$work/diff" | cut -c68- | head -50
  exit 1
fi
echo "$files files, the same bytes from both"
