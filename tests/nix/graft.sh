#!/usr/bin/env bash
# nix/graft.nix with real Nix: a closure built the normal way against a stock glibc that is a
# store path (tests/nix/graft/default.nix; the glibc builds of tests/e2e/build-glibc.sh added to
# the store under one name), grafted onto the patched glibc. The grafted program makes no
# failing library lookup where the original storms, both print the same, every grafted path
# verifies, none refers to an original it replaces, what needs no copy is shared, and every ELF
# file of the graft carries a current note.
# Prints one line per check and ends with "N passed, M failed".
#
# A check's function runs in a condition, where `set -e` does not apply: its steps are chained
# with && (or return explicitly).
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=tests/nix/lib.sh
source tests/nix/lib.sh

cache=${LDCACHE_CACHE_DIR:-/var/cache/ldcache}
tools=$cache/cargo-tools
version=2.42
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

passed=0
failed=0
plan 13

real_nix_setup "$cache"
command -v strace >/dev/null || { echo "strace is missing (see .ci/run)" >&2; exit 1; }

graft_inputs "$version"

args=(--argstr ldcache "$tool" --argstr stockGlibc "$stock" --argstr patchedGlibc "$patched")
files=(nix/graft.nix nix/graft-path.nix tests/nix/graft/default.nix)
check "formatted (nixpkgs-fmt): ${files[*]}" "$tools/bin/nixpkgs-fmt" --check "${files[@]}"
check "no dead code (deadnix): ${files[*]}" "$tools/bin/deadnix" --fail "${files[@]}"

build() {
    nix-build --no-out-link tests/nix/graft "${args[@]}" -A "$1" 2>"$work/build-$1.log" ||
        { tail -n 30 "$work/build-$1.log" >&2; return 1; }
}
original=$(build script)
start=$SECONDS
grafted=$(build grafted)
graft_seconds=$((SECONDS - start))
data=$(build data)
echo "graft of $(nix-store -qR "$grafted" | wc -l) paths in $graft_seconds s" >&2

# failing_lookups SCRIPT: failing open/stat-family calls on store paths while SCRIPT runs.
failing_lookups() {
    strace -f -Z -qq -e trace=open,openat,openat2,stat,lstat,newfstatat,statx,access \
        -o "$work/strace" "$1/bin/run-program" >/dev/null
    grep -c "$(dirname "$stock")/" "$work/strace" || true
}

storm=$(failing_lookups "$original")
check "the original storms: $storm failing lookups" test "$storm" -gt 20
check "the grafted program makes no failing library lookup" \
    test "$(failing_lookups "$grafted")" -eq 0
same_output() {
    local a b
    a=$("$original/bin/run-program") && b=$("$grafted/bin/run-program") &&
        echo "original: $a; grafted: $b" && [ "$a" = "$b" ] && [ "$a" = "grafted l8=36 plugin=106" ]
}
check "both print the same" same_output

mapfile -t closure < <(nix-store -qR "$grafted")
mapfile -t original_closure < <(nix-store -qR "$original")
check "nix-store --verify-path holds for every grafted path" nix-store --verify-path "${closure[@]}"

# The originals the graft replaces: every path of the original closure that refers to the stock
# glibc, directly or not, and the stock glibc itself.
replaced_originals() {
    local path
    for path in "${original_closure[@]}"; do
        nix-store -qR "$path" | grep -qxF "$stock" && echo "$path"
    done
}
mapfile -t replaced < <(replaced_originals)
no_replaced_original() {
    local path ref
    echo "${#replaced[@]} originals replaced"
    for path in "${closure[@]}"; do
        for ref in $(nix-store -q --references "$path") "$path"; do
            printf '%s\n' "${replaced[@]}" | grep -qxF "$ref" &&
                { echo "$path refers to the original $ref"; return 1; }
        done
    done
    return 0
}
check "no grafted path refers to an original one that was replaced" no_replaced_original
check "the stock glibc is not in the graft, the patched one is" \
    sh -c "! printf '%s\n' \"\$@\" | grep -qxF $stock && printf '%s\n' \"\$@\" | grep -qxF $patched" \
    sh "${closure[@]}"
check "a path that needs no copy is shared: $data" \
    sh -c 'printf "%s\n" "$@" | grep -qxF '"$data" sh "${closure[@]}"
check "as many grafted paths as replaced originals, plus the shared ones" \
    test "${#closure[@]}" -eq "${#original_closure[@]}"

# Every dynamically linked ELF file of the graft that has something to look up carries a
# current note (the C library's own files have no search path; a library that needs nothing
# needs no note).
notes_current() {
    local file shown n=0
    while IFS= read -r -d '' file; do
        head -c 4 "$file" | grep -q 'ELF' || continue
        # Nothing to look up: no note needed (libl1.so needs nothing, not even the C library).
        readelf -d "$file" 2>/dev/null | grep -q '(NEEDED)' || continue
        shown=$(target/release/ldcache show --json "$file") || return 1
        if grep -q '"note": null\|no resolution-cache note' <<<"$shown"; then
            case $file in "$patched"/*) continue ;; esac
            echo "no note: $file"
            return 1
        fi
        grep -q '"current": true' <<<"$shown" || { echo "stale: $file: $shown"; return 1; }
        n=$((n + 1))
    done < <(find "${closure[@]}" -type f -print0)
    echo "$n files with current notes"
    [ "$n" -eq 9 ] # lib2 to lib8, the plugin, the program
}
check "every ELF file of the graft with something to look up carries a current note" notes_current
# The grafted paths but the C library (which has no search path of its own to predict).
audit_predicts_none() {
    local paths
    mapfile -t paths < <(printf '%s\n' "${closure[@]}" | grep -vxF "$patched")
    target/release/ldcache audit --json "${paths[@]}" | python3 -c '
import json, sys
total = json.load(sys.stdin)["total"]
print(total)
sys.exit(not (total["stock"] > 0 and total["with_notes"] == 0))'
}
check "ldcache audit over the graft predicts no failing lookup with its notes" audit_predicts_none

# The same graft again: nothing to build.
check "evaluating the graft again builds nothing" \
    sh -c "nix-build --no-out-link tests/nix/graft ${args[*]} -A grafted --dry-run 2>&1 | grep -q 'will be built' && exit 1 || exit 0"

summary
