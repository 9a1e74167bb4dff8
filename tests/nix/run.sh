#!/usr/bin/env bash
# Checks of the Nix files that need no nixpkgs: every file parses, is
# formatted (nixpkgs-fmt) and has no dead code (deadnix); the overlay, the
# package, the flake and the closure test evaluate against mock-nixpkgs with
# the expected results (eval.nix); the evaluation errors are the intended ones.
# Installs what is missing: Debian's nix-bin (as root), nixpkgs-fmt and deadnix
# from crates.io into $LDCACHE_CACHE_DIR/cargo-tools.
# Prints one line per check and ends with "N passed, M failed".
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=tests/nix/lib.sh
source tests/nix/lib.sh

cache=${LDCACHE_CACHE_DIR:-$HOME/.cache/ldcache}
tools=$cache/cargo-tools
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

install_nix() {
    command -v nix-instantiate >/dev/null && return
    [ "$(id -u)" -eq 0 ] || { echo "nix-instantiate is missing: apt-get install nix-bin" >&2; exit 1; }
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >&2
    apt-get install -y -q --no-install-recommends nix-bin >&2
}

# Pinned, so that the formatting check means the same everywhere.
install_cargo_tools() {
    [ -x "$tools/bin/nixpkgs-fmt" ] && [ -x "$tools/bin/deadnix" ] && return
    CARGO_INSTALL_ROOT=$tools cargo install --locked --quiet nixpkgs-fmt@1.3.0 deadnix@1.3.1 >&2
}

# Nix without a daemon: a store of our own (nothing is built or written to it
# by --eval, but Nix needs one to open), no experimental features.
nix_eval() {
    nix-instantiate --store "$work/store" --option experimental-features '' "$@"
}

passed=0
failed=0

# fails_with MESSAGE EXPRESSION: evaluating EXPRESSION fails with MESSAGE.
fails_with() {
    local message=$1 expression=$2 output
    if output=$(nix_eval --eval --strict -E "$expression" 2>&1); then
        echo "evaluated, expected an error: $output"
        return 1
    fi
    grep -qF -- "$message" <<<"$output" || { echo "$output"; return 1; }
}

# eval_true ATTRIBUTE: the check of that name in eval.nix is true.
eval_true() {
    [ "$(nix_eval --eval --strict tests/nix/eval.nix -A "$1")" = true ]
}

install_nix
install_cargo_tools

files=(flake.nix nix/*.nix tests/nix/*.nix tests/nix/mock-nixpkgs/*.nix tests/hook/*.nix)

for file in "${files[@]}"; do
    check "parses: $file" nix_eval --parse "$file"
done
for file in "${files[@]}"; do
    check "formatted (nixpkgs-fmt): $file" "$tools/bin/nixpkgs-fmt" --check "$file"
done
check "no dead code (deadnix): ${files[*]}" "$tools/bin/deadnix" --fail "${files[@]}"

mapfile -t checks < <(nix_eval --eval --strict --json -E 'builtins.attrNames (import ./tests/nix/eval.nix)' |
    python3 -c 'import json, sys; print("\n".join(json.load(sys.stdin)))')
# A failure to list them must not pass as zero checks.
check "eval.nix lists its checks" [ "${#checks[@]}" -gt 10 ]
for name in "${checks[@]}"; do
    check "evaluates: $name" eval_true "$name"
done

overlaid='overlays: import ./tests/nix/mock-nixpkgs { inherit overlays; glibcVersion = "2.39-52"; }'
unsupported="ldcache: no loader patch for glibc 2.39 (this nixpkgs' glibc is 2.39-52); supported: $(
    cd nix/glibc && ls ldcache-*.patch | sed 's/^ldcache-//; s/\.patch$//' | paste -sd, | sed 's/,/, /g')"
# stops_at_once: glibc's first build step, run by bash, prints the message and fails.
stops_at_once() {
    local step
    step=$(nix_eval --eval --strict --json -E \
        "(($overlaid) [ (import ./nix/overlay.nix) ]).glibc.preUnpack" 2>/dev/null |
        python3 -c 'import json, sys; print(json.load(sys.stdin))')
    ! bash -c "$step" 2>"$work/stderr" && [ "$(cat "$work/stderr")" = "$unsupported" ]
}
check "unsupported glibc: glibc's build stops at once, naming the supported versions" stops_at_once
check "unsupported glibc: evaluating glibc warns with the same message" \
    grep -qF -- "warning: $unsupported" <(nix_eval --eval --strict -E \
    "(($overlaid) [ (import ./nix/overlay.nix) ]).glibc.name" 2>&1)
check "unsupported glibc: the tool and the hook still evaluate" \
    nix_eval --eval --strict -E "let pkgs = ($overlaid) [ (import ./nix/overlay.nix) ]; in
     assert pkgs.ldcache.name == \"ldcache-0.1.0\"; pkgs.ldcache-hook.name"
# The mock is faithful where it matters: a hook built from the overlaid set
# itself needs the stdenv it is part of.
check "control: a hook built from final recurses in the mock" fails_with \
    "infinite recursion" \
    "(($overlaid) [ (final: prev: { stdenv = prev.stdenv.override (old: {
       extraNativeBuildInputs = (old.extraNativeBuildInputs or [ ]) ++ [ (final.makeSetupHook { name = \"h\"; } ./setup-hooks/ldcache.sh) ];
     }); }) ]).stdenv.defaultNativeBuildInputs"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
