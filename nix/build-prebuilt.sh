#!/usr/bin/env bash
# Makes the release artefact nix/prebuilt.nix fetches: the tool linked statically (glibc's
# libc.a, static-pie) and stripped, as bin/ldcache, beside its setup hook as
# nix-support/setup-hook, packed as a NAR and compressed with xz. The hook is
# setup-hooks/ldcache.sh with the tool's path found from the hook's own (BASH_SOURCE inside a
# function names the file that defined it), since a fixed-output path cannot name itself.
#
# Prints the arguments for nix/prebuilt.nix: { url = "file://..."; hash = "sha256-..."; }
# (publish the file and put its address in place of the file:// URL).
#
# Usage: nix/build-prebuilt.sh OUT_DIR   (x86_64-linux; needs cargo, xz and Nix's nix-store)
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(mkdir -p "${1:?usage: nix/build-prebuilt.sh OUT_DIR}" && cd "$1" && pwd)
cache=${LDCACHE_CACHE_DIR:-/var/cache/ldcache}
target=x86_64-unknown-linux-gnu
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)

# No path of this machine in the binary (panic locations name source files).
RUSTFLAGS="-C target-feature=+crt-static --remap-path-prefix=$PWD=/ldcache \
--remap-path-prefix=${CARGO_HOME:-$HOME/.cargo}=/cargo" \
    cargo build --release --locked --quiet --target "$target" \
    --target-dir "$cache/prebuilt-target" -p ldcache

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
tree=$work/ldcache
install -D -m 755 "$cache/prebuilt-target/$target/release/ldcache" "$tree/bin/ldcache"
strip "$tree/bin/ldcache"
# shellcheck disable=SC2016 # the replacement is shell code for the hook
sed 's|"@ldcache@"|"${BASH_SOURCE[0]%/nix-support/setup-hook}/bin/ldcache"|' \
    setup-hooks/ldcache.sh >"$work/setup-hook"
install -D -m 644 "$work/setup-hook" "$tree/nix-support/setup-hook"
if grep -q '@ldcache@"' "$tree/nix-support/setup-hook"; then
    echo "build-prebuilt: the hook still has a placeholder" >&2
    exit 1
fi
if readelf -d "$tree/bin/ldcache" | grep -q NEEDED; then
    echo "build-prebuilt: the tool is not statically linked" >&2
    exit 1
fi
"$tree/bin/ldcache" --version >/dev/null

name=ldcache-$version-x86_64-linux.nar.xz
nix-store --dump "$tree" | xz -9 --threads=1 >"$out/$name"
hash=$(nix-hash --type sha256 --sri "$tree")
printf '{ url = "file://%s"; hash = "%s"; }\n' "$out/$name" "$hash"
