# shellcheck shell=bash
# Shell functions shared by the Nix suites (sourced; a suite that uses `check` defines `work`,
# `passed` and `failed`). The plan (`plan`, `summary`) is every suite's, from tests/lib.sh; the
# `check` below replaces that file's.

# shellcheck source=tests/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"

# check NAME COMMAND...: runs COMMAND quietly (its output goes to $work/log) and prints one line,
# "ok   NAME" or "FAIL NAME" with that output; counts the result in `passed` and `failed`.
check() {
    local name=$1
    shift
    if "$@" >"$work/log" 2>&1; then
        echo "ok   $name"
        passed=$((passed + 1))
    else
        echo "FAIL $name"
        sed 's/^/     /' "$work/log"
        failed=$((failed + 1))
    fi
}

# real_nix_setup CACHE: Nix 2.26 (../shared/nix/install-nix.sh beside the checkout, into
# CACHE/nix-trixie) in this shell's environment, and ../shared/nix/auxolotl-core.tar.xz unpacked
# under CACHE/auxolotl, again whenever the archive changes; sets `tree` to the unpacked tree.
# Run from the checkout's top directory.
real_nix_setup() {
    local cache=$1 shared stamp
    shared=$(cd .. && pwd)/shared/nix
    # shellcheck disable=SC1091 # written by install-nix.sh
    source "$(bash "$shared/install-nix.sh" "$cache/nix-trixie" 2>/dev/null | tail -n 1)/env.sh"
    stamp=$(sha256sum "$shared/auxolotl-core.tar.xz" | cut -c1-16)
    if [ "$(cat "$cache/auxolotl/.stamp" 2>/dev/null)" != "$stamp" ]; then
        rm -rf "$cache/auxolotl"
        mkdir -p "$cache/auxolotl"
        tar -xJf "$shared/auxolotl-core.tar.xz" -C "$cache/auxolotl"
        echo "$stamp" >"$cache/auxolotl/.stamp"
    fi
    # shellcheck disable=SC2034 # for the caller
    tree=$cache/auxolotl/auxolotl-core
}

# store_add NAME DIR...: the files of DIRs copied into one store path named NAME; prints it.
# Uses $work.
store_add() {
    local name=$1
    shift
    rm -rf "${work:?}/add/$name"
    mkdir -p "$work/add/$name"
    cp -a "$@" "$work/add/$name/"
    nix-store --add "$work/add/$name"
}

# graft_inputs VERSION: what tests/nix/graft/default.nix takes, in the store: `stock` and
# `patched`, the shared libraries of tests/e2e/build-glibc.sh's two builds of glibc VERSION
# under one name (glibc-VERSION/lib, so both paths have one length), and `tool`, the release
# build of ldcache (bin/ldcache). Run from the checkout's top directory after real_nix_setup.
graft_inputs() {
    local version=$1 key value variant libdir
    while IFS='=' read -r key value; do
        printf -v "$key" %s "$value"
    done < <(bash tests/e2e/build-glibc.sh "$version")
    for variant in stock patched; do
        libdir=$PRISTINE_LIBDIR
        [ "$variant" = patched ] && libdir=$PATCHED_LIBDIR
        rm -rf "${work:?}/$variant"
        mkdir -p "$work/$variant/lib"
        find "$libdir" -maxdepth 1 ! -type d ! -name libc.so \
            \( -name '*.so.*' -o -name 'ld-linux*' -o -name '*.so' \) -exec cp -a {} "$work/$variant/lib/" \;
        printf -v "$variant" %s "$(store_add "glibc-$version" "$work/$variant/lib")"
    done
    cargo build --release --locked --quiet --bin ldcache
    mkdir -p "$work/tool/bin"
    cp target/release/ldcache "$work/tool/bin/"
    # shellcheck disable=SC2034 # for the caller
    tool=$(store_add ldcache "$work/tool/bin")
}
