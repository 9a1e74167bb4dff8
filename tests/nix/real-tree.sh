#!/usr/bin/env bash
# The overlay evaluated with real Nix (2.26, from ../shared/nix/install-nix.sh) against a real
# nixpkgs-structured tree (../shared/nix/auxolotl-core.tar.xz: nixpkgs' lib, stdenv with the
# Linux bootstrap stages, top-level with overlays applied in every stage; glibc 2.39), beside
# the checkout. Both are third-party test data, unpacked under $LDCACHE_CACHE_DIR.
#
# glibc 2.39 has no loader patch, which is what a user of an unsupported nixpkgs meets; the
# supported versions are shown by an overlay, applied before ours, that gives glibc each
# supported version number.
# Prints one line per check and ends with "N passed, M failed".
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=tests/nix/lib.sh
source tests/nix/lib.sh

cache=${LDCACHE_CACHE_DIR:-/var/cache/ldcache}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

passed=0
failed=0
# 26 checks, and one per loader patch.
plan $((26 + $(find nix/glibc -maxdepth 1 -name 'ldcache-*.patch' | wc -l)))

# nix_eval EXPRESSION: evaluate EXPRESSION with `pkgs` (the tree with OVERLAYS, a Nix list) and
# `lib` in scope; prints the result as JSON.
nix_eval() {
    nix eval --impure --json --expr "
      let
        pkgs = import $tree { overlays = ${OVERLAYS:-[ ]}; };
        inherit (pkgs) lib;
      in $1"
}

# yields EXPECTED EXPRESSION: EXPRESSION evaluates to the JSON EXPECTED.
yields() {
    local got
    got=$(nix_eval "$2") || return 1
    [ "$got" = "$1" ] || { echo "got $got, expected $1"; return 1; }
}

ours='(import ./nix/overlay.nix)'
# with_glibc VERSION [OVERLAY]: the Nix list of an overlay that gives glibc VERSION, then
# OVERLAY (default: ours; "" for none). glibc's `version` attribute comes from its passthru.
with_glibc() {
    echo "[ (_: prev: { glibc = prev.glibc.overrideAttrs (old: {
             passthru = old.passthru // { version = \"$1\"; }; }); }) ${2-$ours} ]"
}

real_nix_setup "$cache"
check "stock tree: stdenv evaluates" yields true '(builtins.isString pkgs.stdenv.drvPath)'

OVERLAYS="[ $ours ]"
unsupported="ldcache: no loader patch for glibc 2.39 (this nixpkgs' glibc is 2.39); supported: $(
    cd nix/glibc && ls ldcache-*.patch | sed 's/^ldcache-//; s/\.patch$//' | paste -sd, | sed 's/,/, /g')"
check "glibc 2.39: the tool evaluates" yields true '(builtins.isString pkgs.ldcache.drvPath)'
check "glibc 2.39: the hook evaluates" yields true '(builtins.isString pkgs.ldcache-hook.drvPath)'
check "glibc 2.39: evaluating glibc warns naming the supported versions" \
    grep -qF "warning: $unsupported" <(nix_eval pkgs.glibc.name 2>&1)
check "glibc 2.39: glibc's build stops at once with that message" \
    yields true "(lib.hasInfix (lib.escapeShellArg \"$unsupported\") pkgs.glibc.preUnpack)"

# flake_ldcache_is_the_hooks_tool: the flake's package evaluates on this nixpkgs, and is the
# very derivation the overlay's hook runs.
flake_ldcache_is_the_hooks_tool() {
    local flake overlay
    flake=$(nix eval --override-input nixpkgs "path:$tree" --no-write-lock-file --json \
        .#packages.x86_64-linux.ldcache.drvPath) || return 1
    overlay=$(nix_eval pkgs.ldcache.drvPath 2>/dev/null) || return 1
    [ "$flake" = "$overlay" ] || { echo "flake $flake, overlay $overlay"; return 1; }
}
check "glibc 2.39: the flake's packages.x86_64-linux.ldcache is the hook's tool" \
    flake_ldcache_is_the_hooks_tool

for version in $(cd nix/glibc && ls ldcache-*.patch | sed 's/^ldcache-//; s/\.patch$//'); do
    OVERLAYS=$(with_glibc "$version")
    # The final stdenv's libc is the glibc every package links against; it is built by a
    # bootstrap stage, from that stage's glibc attribute.
    check "glibc $version: the final stdenv's libc ends its patches with ldcache-$version.patch" \
        yields "\"ldcache-$version.patch\"" \
        "(baseNameOf (toString (lib.last pkgs.stdenv.cc.libc.patches)))"
done

# The bootstrap chain, stage by stage, and the package sets derived from it, with glibc 2.42.
OVERLAYS=$(with_glibc 2.42)
# How often the input named NAME is in a stdenv's extraNativeBuildInputs.
hooks_named='(name: stdenv: builtins.length (builtins.filter (input: (input.name or "") == name)
          stdenv.extraNativeBuildInputs))'
hooks="($hooks_named \"ldcache-hook\")"
# The package set of every stage, the final one first (stage 0's stdenv is the bootstrap tools').
sets='(let sets = set: [ set ] ++ lib.optionals (set.stdenv.name != "bootstrap-stage0-stdenv-linux")
         (sets set.stdenv.__bootPackages); in sets pkgs)'
check "every stage's stdenv has the hook exactly once" \
    yields true "(builtins.all (set: $hooks set.stdenv == 1) $sets)"
patched_everywhere="(builtins.all (set: set.glibc.passthru.isFromBootstrapFiles or false
       || baseNameOf (toString (lib.last set.glibc.patches)) == \"ldcache-2.42.patch\") $sets)"
check "every stage's glibc is patched (or the bootstrap tools')" yields true "$patched_everywhere"
check "the tool and its hook are built without the hook" \
    yields '[0,0]' "(map (drv: $hooks drv.stdenv) [ pkgs.ldcache pkgs.ldcache-hook ])"
check "one tool for every stage (one un-overlaid nixpkgs evaluated)" \
    yields 1 "(builtins.length (lib.unique (map (set: set.ldcache.drvPath) $sets)))"
check "the final stdenv keeps the package sets the booter gave it" \
    yields true '(pkgs.stdenv ? __bootPackages && pkgs.stdenv ? __hatPackages)'
check "aarch64 (cross) and i686 package sets: the hook once; the cross set runs the build platform's tool" \
    yields '[1,1,true]' "[ ($hooks pkgs.pkgsCross.aarch64-multiplatform.stdenv) ($hooks pkgs.pkgsi686Linux.stdenv)
       (pkgs.pkgsCross.aarch64-multiplatform.ldcache.drvPath == pkgs.ldcache.drvPath) ]"
check "musl and static package sets: no hook" \
    yields '[0,0]' "(map $hooks [ pkgs.pkgsCross.musl64.stdenv pkgs.pkgsStatic.stdenv ])"
# allowedRequisites: the final stdenv may reference what it may without the overlay, the hook, the
# tool, and what the tool's stdenv (the un-overlaid one) may; the tool itself may reference only
# that last list, which Nix enforces when it builds the tool. Compared by name: the overlaid
# stdenv's own paths differ from the stock ones (its glibc is patched).
stock='(import '"$tree"' { })'
names='(drvs: lib.sort lib.lessThan (map (drv: drv.name or (baseNameOf drv)) drvs))'
check "the final stdenv's allowedRequisites: the stock list, the hook, the tool and the tool's stdenv's list" \
    yields true "($names pkgs.stdenv.allowedRequisites == $names ($stock.stdenv.allowedRequisites
       ++ [ pkgs.ldcache-hook pkgs.ldcache ] ++ $stock.stdenv.allowedRequisites))"
check "the tool may reference only itself and what its stdenv may" \
    yields true "(map toString pkgs.ldcache.allowedRequisites
       == [ \"out\" ] ++ map toString $stock.stdenv.allowedRequisites)"
check "the final stdenv keeps disallowedRequisites (the bootstrap tools)" \
    yields true "(pkgs.stdenv.disallowedRequisites != [ ]
       && map (drv: drv.name) pkgs.stdenv.disallowedRequisites
          == map (drv: drv.name) $stock.stdenv.disallowedRequisites)"
OVERLAYS=

# The overlay with a prebuilt tool (nix/prebuilt.nix; evaluating a fixed-output derivation fetches
# nothing, so the address and hash need not exist here; tests/nix/real-setup.sh builds with a
# real one). No un-overlaid nixpkgs is imported: the evaluation does about what the stock one
# does, which the evaluator's own counters (deterministic, unlike times) show.
prebuilt='(import ./nix/prebuilt.nix { url = "file:///nonexistent/ldcache.nar.xz";
             hash = "sha256-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="; })'
with_prebuilt=$(with_glibc 2.42 "(import ./nix/make-overlay.nix { tool = $prebuilt; })")
OVERLAYS=$with_prebuilt
tool_hooks="($hooks_named \"ldcache-prebuilt\")"
check "prebuilt tool: every stage's stdenv has it exactly once, as its hook" \
    yields true "(builtins.all (set: $tool_hooks set.stdenv == 1 && $hooks set.stdenv == 0) $sets)"
check "prebuilt tool: every stage's glibc is patched (or the bootstrap tools')" \
    yields true "$patched_everywhere"
check "prebuilt tool: the same fixed-output derivation in every stage, the aarch64 (cross) set included" \
    yields true "(lib.unique (map (set: set.ldcache.drvPath) ($sets ++ [ pkgs.pkgsCross.aarch64-multiplatform ]))
       == [ $prebuilt.drvPath ])"
check "prebuilt tool: the final stdenv's allowedRequisites are the stock list and the tool" \
    yields true "($names pkgs.stdenv.allowedRequisites == $names ($stock.stdenv.allowedRequisites
       ++ [ pkgs.ldcache ]))"
check "prebuilt tool: musl and static package sets: no hook" \
    yields '[0,0]' "(map $tool_hooks [ pkgs.pkgsCross.musl64.stdenv pkgs.pkgsStatic.stdenv ])"
check "prebuilt tool: a build platform it does not run on is refused by name" \
    grep -qF "the prebuilt tool runs on x86_64-linux, not on the build platform aarch64-linux" \
    <(nix eval --impure --json --expr "(import $tree { localSystem.system = \"aarch64-linux\";
        overlays = $with_prebuilt; }).ldcache.drvPath" 2>&1)
OVERLAYS=

# work OVERLAYS: the evaluator's function calls and thunks for the final stdenv's drvPath.
work() {
    NIX_SHOW_STATS=1 NIX_SHOW_STATS_PATH="$work/stats.json" nix eval --impure --raw \
        --expr "(import $tree { overlays = $1; }).stdenv.drvPath" >/dev/null &&
        python3 -c 'import json, sys; j = json.load(open(sys.argv[1]))
print(j["nrFunctionCalls"] + j["nrThunks"])' "$work/stats.json"
}
stock_work=$(work "[ ]") || stock_work=0
prebuilt_work=$(work "$with_prebuilt") || prebuilt_work=0
source_work=$(work "$(with_glibc 2.42)") || source_work=0
check "prebuilt tool: evaluating stdenv does at most 1.25x the stock evaluator work (function calls + thunks: stock $stock_work, prebuilt tool $prebuilt_work; tool from source $source_work)" \
    test "$stock_work" -gt 0 -a "$((prebuilt_work * 4))" -le "$((stock_work * 5))"

# The NixOS module, through the tree's own module system, with the two NixOS options it sets
# declared as NixOS declares them (the tree has no nixos/). glibc 2.42 has a loader patch.
module() {
    echo "(lib.evalModules { modules = [
        (import ./nix/module.nix { overlay = $ours; })
        { options.nixpkgs.overlays = lib.mkOption { default = [ ]; };
          options.system.replaceDependencies.replacements = lib.mkOption { default = [ ]; };
          config._module.args.pkgs = pkgs; }
        { ldcache.mode = \"$1\"; } ]; }).config"
}
OVERLAYS=$(with_glibc 2.42 "")
check "module: rebuild (the default) applies the overlay and replaces nothing" \
    yields true "(let c = $(module rebuild); in builtins.length c.nixpkgs.overlays == 1
       && (pkgs.extend (builtins.head c.nixpkgs.overlays)) ? ldcache-hook
       && c.system.replaceDependencies.replacements == [ ])"
check "module: graft replaces each glibc output by the patched one, and copies with ldcache graft" \
    yields true "(let c = $(module graft); r = c.system.replaceDependencies.replacements;
       grafted = (lib.foldl' (p: o: p.extend o) pkgs c.nixpkgs.overlays);
       copy = grafted.replaceDirectDependencies { drv = pkgs.zlib; replacements = [ {
         oldDependency = \"/nix/store/00000000000000000000000000000000-glibc-2.42\";
         newDependency = \"/nix/store/11111111111111111111111111111111-glibc-2.42\"; } ]; };
     in map (x: x.oldDependency.outputName) r == pkgs.glibc.outputs
       && lib.all (x: lib.last x.newDependency.patches == ./nix/glibc/ldcache-2.42.patch) r
       && baseNameOf copy.builder == \"ldcache\" && builtins.elem \"graft\" copy.args
       && grafted.replaceDirectDependencies { drv = pkgs.zlib; } == pkgs.zlib)"
check "module: off changes nothing" \
    yields true "(let c = $(module off); in c.nixpkgs.overlays == [ ]
       && c.system.replaceDependencies.replacements == [ ])"
OVERLAYS=

summary
