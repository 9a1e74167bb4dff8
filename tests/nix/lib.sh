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
