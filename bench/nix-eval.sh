#!/usr/bin/env bash
# What the overlay costs every evaluation: wall time and peak memory of evaluating
# ATTRIBUTE.drvPath of the real nixpkgs-structured tree (../shared/nix, unpacked under
# $LDCACHE_CACHE_DIR by tests/nix/real-tree.sh) without and with the overlay, with real Nix
# 2.26. The tree's glibc (2.39) is given version 2.42 so that the overlay patches it, as on
# the nixpkgs people run. Median of RUNS (default 5) runs, each a fresh `nix eval`.
#
# With the tool built from source (nix/overlay.nix) and with a prebuilt tool (nix/make-overlay.nix
# given nix/prebuilt.nix; evaluation fetches nothing, so its address and hash need not exist).
# Then the tool alone, evaluated from the stock tree: the share of the from-source overlay's cost
# that is the tool's own nixpkgs.
#
# Usage: bench/nix-eval.sh [ATTRIBUTE...]     (default: stdenv zlib)
set -euo pipefail
cd "$(dirname "$0")/.."

cache=${LDCACHE_CACHE_DIR:-/var/cache/ldcache}
tree=$cache/auxolotl/auxolotl-core
runs=${RUNS:-5}
[ -d "$tree" ] || { echo "run tests/nix/real-tree.sh first (it unpacks $tree)" >&2; exit 1; }
# shellcheck disable=SC1091 # written by install-nix.sh
source "$cache/nix-trixie/env.sh"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

glibc_242='(_: prev: { glibc = prev.glibc.overrideAttrs (old: { passthru = old.passthru // { version = "2.42"; }; }); })'

# measure OVERLAYS ATTRIBUTE: prints "median-seconds median-MiB" over $runs runs; exits when an
# evaluation fails.
measure() {
    local i times=$work/times
    : >"$times"
    for ((i = 0; i < runs; i++)); do
        /usr/bin/time -o "$times" -a -f '%e %M' nix eval --impure --raw \
            --expr "(import $tree { overlays = $1; }).$2.drvPath" >/dev/null ||
            { echo "evaluating $2 failed" >&2; exit 1; }
    done
    sort -n "$times" | awk '{ t[NR] = $1; m[NR] = $2 } END {
        n = int((NR + 1) / 2); asort(m); printf "%.2f %.0f\n", t[n], m[n] / 1024 }'
}

prebuilt='(import ./nix/make-overlay.nix { tool = import ./nix/prebuilt.nix {
  url = "file:///nonexistent/ldcache.nar.xz"; hash = "sha256-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="; }; })'

printf '| attribute | stock: s, MiB | overlay, tool from source: s, MiB (ratio) | overlay, prebuilt tool: s, MiB (ratio) |\n'
printf '| --- | --- | --- | --- |\n'
for attribute in "${@:-stdenv zlib}"; do
    for a in $attribute; do
        stock=$(measure "[ $glibc_242 ]" "$a")
        overlaid=$(measure "[ $glibc_242 (import ./nix/overlay.nix) ]" "$a")
        fetched=$(measure "[ $glibc_242 $prebuilt ]" "$a")
        read -r st sm <<<"$stock"
        read -r ot om <<<"$overlaid"
        read -r pt pm <<<"$fetched"
        awk -v a="$a" -v st="$st" -v sm="$sm" -v ot="$ot" -v om="$om" -v pt="$pt" -v pm="$pm" 'BEGIN {
            printf "| `%s.drvPath` | %.2f, %d | %.2f, %d (%.2fx, %.2fx) | %.2f, %d (%.2fx, %.2fx) |\n",
                a, st, sm, ot, om, ot / st, om / sm, pt, pm, pt / st, pm / sm }'
    done
done

# What the overlay adds: the tool, from its own un-overlaid nixpkgs (that set's whole bootstrap
# and rust toolchain), the same derivation as the overlay's `ldcache`.
alone='[ (final: _: { ldcache-alone = final.callPackage ./nix/package.nix { }; }) ]'
tool=$(measure "$alone" ldcache-alone)
read -r tt tm <<<"$tool"
printf '\nThe tool alone (`callPackage ./nix/package.nix { }` of the stock tree): %.2f s, %d MiB\n' "$tt" "$tm"
