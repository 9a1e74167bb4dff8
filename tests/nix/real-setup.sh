#!/usr/bin/env bash
# The setup hook inside the real nixpkgs stdenv, with real nix-build: the stdenv is the tree's
# own pkgs/stdenv/generic (its setup.sh and default hooks: strip, patch-shebangs, multiple
# outputs, ...) around host tools, given the hook by nix/overlay.nix (tests/nix/setup/stdenv.nix).
# The tree and Nix are those of tests/nix/real-tree.sh; nothing is downloaded or built from
# nixpkgs sources. The tool is the release build of this checkout, copied into the store.
# tests/nix/setup/default.nix has what is built; every check below reads what the builds left.
# Installs what is missing: Debian's patchelf (as root), for nixpkgs' patchelf setup hook and
# the RUNPATH edits.
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
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

passed=0
failed=0
plan 26

install_patchelf() {
    command -v patchelf >/dev/null && return
    [ "$(id -u)" -eq 0 ] || { echo "patchelf is missing: apt-get install patchelf" >&2; exit 1; }
    local install=(env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends patchelf)
    "${install[@]}" >/dev/null 2>&1 || { apt-get update -q >&2 && "${install[@]}" >&2; }
}

real_nix_setup "$cache"
install_patchelf
cargo build --release --locked --quiet --bin ldcache

# The arguments of tests/nix/setup (both absolute paths: Nix path values).
args=(--arg tree "$tree" --arg ldcache "$PWD/target/release/ldcache")
expected="foo 40 bar 2 baz 42"

files=(tests/nix/setup/*.nix)
check "formatted (nixpkgs-fmt): ${files[*]}" "$tools/bin/nixpkgs-fmt" --check "${files[@]}"
check "no dead code (deadnix): ${files[*]}" "$tools/bin/deadnix" --fail "${files[@]}"

if ! nix-build --no-out-link tests/nix/setup "${args[@]}" >"$work/build.log" 2>&1; then
    echo "FAIL nix-build tests/nix/setup"
    tail -n 40 "$work/build.log" | sed 's/^/     /'
    echo "$passed passed, $((failed + 1)) failed"
    exit 1
fi

# path[NAME.OUTPUT]: the store path of that output of tests/nix/setup's attribute NAME;
# path[NAME.drv]: its derivation.
# shellcheck disable=SC2016 # a Nix expression
nix-instantiate --eval --strict --json "${args[@]}" -E '
    { tree, ldcache }: builtins.mapAttrs
      (_: drv: { drv = drv.drvPath; } // builtins.listToAttrs
        (map (output: { name = output; value = drv.${output}.outPath; }) drv.outputs))
      (import ./tests/nix/setup { inherit tree ldcache; })' >"$work/paths.json"
declare -A path
while read -r key value; do
    path[$key]=$value
done < <(python3 -c 'import json, sys
for name, paths in json.load(sys.stdin).items():
    for key, value in paths.items():
        print(f"{name}.{key} {value}")' <"$work/paths.json")
ldcache=${path[ldcache.out]}/bin/ldcache

# current FILE...: each FILE has a note the loader would use, and the note's fingerprint is that
# of the RUNPATH the file has now (XXH64 of the string, as the note format defines it; computed
# by the e2e tests' own implementation).
current() {
    local file
    for file; do
        "$ldcache" show --json "$file" | PYTHONPATH=tests/e2e python3 -B -c '
import json, sys
from ldcache_note import xxh64
note = json.load(sys.stdin)
runpath = sys.argv[1].encode()
h = xxh64(runpath)
if not (note["current"] and note["fingerprint"] == {"tag": "runpath", "length": len(runpath), "hash": h}):
    sys.exit(f"RUNPATH {sys.argv[1]}\n{json.dumps(note, indent=1)}")' "$(patchelf --print-rpath "$file")" || return 1
    done
}

# no_note FILE...: `ldcache show` finds no note in any FILE.
no_note() {
    local file
    for file; do
        "$ldcache" show "$file" | grep -qx '  no resolution-cache note' || { "$ldcache" show "$file"; return 1; }
    done
}

# runpath_is FILE RUNPATH
runpath_is() {
    local got
    got=$(patchelf --print-rpath "$1")
    [ "$got" = "$2" ] || { echo "RUNPATH $got, expected $2"; return 1; }
}

# runs FILE: FILE prints what the program should.
runs() {
    local got
    got=$("$1")
    [ "$got" = "$expected" ] || { echo "printed '$got', expected '$expected'"; return 1; }
}

# summaries NAME...: the hook's summary line is in the build log of each NAME exactly once.
summaries() {
    local name count
    for name; do
        count=$(nix-store --read-log "${path[$name.drv]}" | grep -c '^ldcache: [0-9]* files: ') || true
        [ "$count" -eq 1 ] || { echo "$name: $count summary lines"; return 1; }
    done
}

# no_summary NAME...: the hook printed nothing in the build log of any NAME.
no_summary() {
    local name
    for name; do
        ! nix-store --read-log "${path[$name.drv]}" | grep '^ldcache' || return 1
    done
}

# The stdenv is the real one: $stdenv/setup ends with the tree's setup.sh, byte for byte (the
# generic builder puts a few variables before it), and its default native build inputs are the
# tree's hooks, with nixpkgs' patchelf hook and ldcache-hook, once, before them; the hook runs
# the tool `ldcache show` runs here.
real_stdenv() {
    local stdenv setup=$tree/pkgs/stdenv/generic/setup.sh inputs
    stdenv=$(nix-store --query --binding stdenv "${path[prog.drv]}") &&
        grep -F "\"$ldcache\" embed" "$(grep -o '[^ "]*-ldcache-hook' "$stdenv/setup")/nix-support/setup-hook" &&
        tail -c "$(wc -c <"$setup")" "$stdenv/setup" | cmp - "$setup" &&
        inputs=$(sed -n 's/^defaultNativeBuildInputs="\(.*\)"$/\1/p' "$stdenv/setup" | tr ' ' '\n' |
            sed 's|^.*/[0-9a-z]\{32\}-||' | paste -sd ' ') &&
        echo "$inputs" &&
        [[ $inputs == "setup-hook.sh ldcache-hook audit-tmpdir.sh "*" strip.sh cc-native-" ]] &&
        [ "$(grep -o ldcache <<<"$inputs" | wc -l)" -eq 1 ]
}
check "the stdenv: the tree's generic setup.sh, its default hooks, the patchelf hook and ldcache-hook once" \
    real_stdenv

# allowedRequisites: the stdenv's closure holds the hook and the tool, and Nix let it be built
# because its list (made by the overlay from the stage's list) names them; the rest of the
# closure is within the stage's list too.
requisites_listed() {
    local stdenv drv allowed closure
    stdenv=$(nix-store --query --binding stdenv "${path[prog.drv]}") &&
        drv=$(nix-store --query --deriver "$stdenv") &&
        allowed=$(nix-store --query --binding allowedRequisites "$drv" | tr ' ' '\n' | sort) &&
        closure=$(nix-store --query --requisites "$stdenv" | grep -vFx "$stdenv" | sort) &&
        grep -q -- '-ldcache$' <<<"$closure" && grep -q -- '-ldcache-hook$' <<<"$closure" &&
        [ -z "$(comm -23 <(echo "$closure") <(echo "$allowed"))" ]
}
check "the stdenv's closure (tool and hook included) is within its allowedRequisites, extended by the overlay" \
    requisites_listed

prog=${path[prog.out]}/bin/prog
libbaz=${path[prog.lib]}/lib/libbaz.so
libbar=${path[libbar.out]}/lib/libbar.so

# 1. Notes, and the libraries found where the notes say.
check "prog: bin/prog (out), lib/libbaz.so (lib) and libbar.so (its own store path) have current notes" \
    current "$prog" "$libbaz" "$libbar"
check "prog: runs and prints '$expected'" runs "$prog"
check "libfoo.so needs no library: no note (nothing to cache)" no_note "${path[libfoo.out]}/lib/libfoo.so"

# 2.
check "the summary line is in each build log exactly once (libfoo, libbar, every prog built with the hook)" \
    summaries libfoo libbar prog prog-postfixup prog-hooked prog-hooked-late prog-grown prog-structured

# 3. One derivation, two outputs, one run of the tool; the default fixupOutput hooks before it.
check "prog: one summary line counts the notes of both outputs (2 cached)" \
    grep -Eq '^ldcache: [0-9]+ files: 2 cached, ' <(nix-store --read-log "${path[prog.drv]}")
stripped() {
    local log
    log=$(nix-store --read-log "${path[prog.drv]}") &&
        grep -Fx "stripping (with command strip and flags -S -p) in  ${path[prog.lib]}/lib" <<<"$log" &&
        grep -Fx "stripping (with command strip and flags -S -p) in  ${path[prog.out]}/bin" <<<"$log" &&
        ! readelf -SW "$prog" "$libbaz" | grep -F .debug_ &&
        current "$prog" "$libbaz"
}
check "strip ran (-g objects, no .debug_ sections left) and the notes are current" stripped
shrunk() {
    nix-store --read-log "${path[prog.drv]}" | grep -Fx "shrinking $prog" &&
        runpath_is "$prog" "${path[prog.lib]}/lib:${path[libfoo.out]}/lib:${path[libbar.out]}/lib" &&
        current "$prog"
}
check "patchelf --shrink-rpath ran (the include dirs left the RUNPATH); the fingerprint is the shrunk RUNPATH's" \
    shrunk

# 4. RUNPATH edits after fixupOutput come before the note. The reordered RUNPATH of
# tests/nix/setup/default.nix, with this derivation's own `lib` output.
reordered() {
    echo "${path[libfoo.out]}/include:${path[libbar.out]}/include:${path[$1.lib]}/lib:${path[libfoo.out]}/lib:${path[libbar.out]}/lib"
}
# built_as NAME RUNPATH: NAME's bin/prog has RUNPATH, both outputs have current notes, it runs.
built_as() {
    local file=${path[$1.out]}/bin/prog
    runpath_is "$file" "$2" && current "$file" "${path[$1.lib]}/lib/libbaz.so" && runs "$file"
}
check "postFixup's patchelf --set-rpath (store dirs without its libraries first): the note is current, prog runs" \
    built_as prog-postfixup "$(reordered prog-postfixup)"
hooked() {
    built_as "$1" "${path[libbar.out]}/lib:${path[libfoo.out]}/lib:${path[$1.lib]}/lib"
}
check "a postFixupHooks entry added when sourced (as autoPatchelfHook) runs after postFixup, the note after both" \
    hooked prog-hooked
check "the same with the hook in buildInputs, sourced after the stdenv's ldcache-hook" hooked prog-hooked-late

# A RUNPATH made longer after the shrink: patchelf grows the program header table and moves the
# sections after it, the notes among them. patchelf before 0.16.0 (Debian 12's 0.14.3; the 0.15
# line, nixpkgs' stdenv patchelf, has no fix either) leaves PT_GNU_PROPERTY where
# .note.gnu.property was, now inside the program header table, where glibc finds no property note;
# the tool turns it into PT_NULL and writes the note after patchelf.
grown=${path[prog-grown.out]}/bin/prog
grown_ok() {
    runpath_is "$grown" "$(reordered prog-grown)" && current "$grown" && runs "$grown" &&
        [[ $(readelf -lW "$grown") != *GNU_PROPERTY* ]]
}
check "postFixup grows the RUNPATH ($(patchelf --version)): the note is current, the stale PT_GNU_PROPERTY gone, prog runs" grown_ok

# 5.
check "__structuredAttrs: both outputs have current notes, prog runs" \
    built_as prog-structured "${path[prog-structured.lib]}/lib:${path[libfoo.out]}/lib:${path[libbar.out]}/lib"
# opted_out NAME: no note in either output of NAME, no line from the hook in its log; it runs.
opted_out() {
    no_note "${path[$1.out]}/bin/prog" "${path[$1.lib]}/lib/libbaz.so" && no_summary "$1" &&
        runs "${path[$1.out]}/bin/prog"
}
check "a buildCommand build (no fixup phase) gets no note" \
    no_note "${path[prog-command.out]}/bin/prog"
check "a buildCommand build that ends with ldcacheEmbed gets current notes, prog runs" \
    eval 'current "${path[prog-command-embedded.out]}/bin/prog" && runs "${path[prog-command-embedded.out]}/bin/prog"'
check "dontLdCache: no note in either output, no line from the hook" opted_out prog-optout
check "dontLdCache with __structuredAttrs: the same" opted_out prog-optout-structured

# 6. A note names only files in directories the RUNPATH names already.
# references NAME OUTPUT: the references of that output, the derivation's own outputs by name.
references() {
    local ref output
    nix-store --query --references "${path[$1.$2]}" | while read -r ref; do
        for output in out lib; do
            if [ "$ref" = "${path[$1.$output]}" ]; then ref="<$output>"; fi
        done
        echo "$ref"
    done | sort
}
same_references() {
    local output
    for output in out lib; do
        references "$1" "$output" &&
            diff <(references "$1" "$output") <(references "$2" "$output") || return 1
    done
    # Not vacuous: bin/prog's references include the libraries found through the RUNPATH.
    references "$1" out | grep -qx "${path[libfoo.out]}"
}
check "the notes add no store reference: prog and prog with dontLdCache reference the same paths" \
    same_references prog prog-optout
check "the same with __structuredAttrs" same_references prog-structured prog-optout-structured

# 7. The same derivations with a tool that fails (tests/nix/setup/failing-tool.sh, in the
# store as the hook's tool): the first build that runs the hook fails.
failing_tool() {
    if nix-build --no-out-link tests/nix/setup -A libfoo --arg tree "$tree" \
        --arg ldcache "$PWD/tests/nix/setup/failing-tool.sh" >"$work/failing.log" 2>&1; then
        echo "the build succeeded"
        return 1
    fi
    if ! grep -E '^failing-tool: embed --store-dir [^ ]+ --jobs [0-9]+ -- /nix/store/[^ ]+-libfoo-1$' "$work/failing.log" ||
        ! grep -Fx "ldcache: embedding resolution caches failed (see above)" "$work/failing.log"; then
        cat "$work/failing.log"
        return 1
    fi
}
check "a failing tool fails the build (nix-build exits non-zero, the hook says so)" failing_tool

# manual: the package's postInstall ran with the real installShellFiles (the stdenv's fixup then
# compresses the manual pages).
installed_manual() {
    local out=${path[manual.out]} page
    for page in ldcache ldcache-embed ldcache-strip ldcache-explain ldcache-show ldcache-audit \
        ldcache-verify ldcache-graft ldcache-generate; do
        ls "$out"/share/man/man1/"$page".1* >/dev/null || return 1
    done
    grep -q embed "$out/share/bash-completion/completions/ldcache.bash" &&
        grep -q embed "$out/share/zsh/site-functions/_ldcache" &&
        grep -q embed "$out/share/fish/vendor_completions.d/ldcache.fish"
}
check "nix/package.nix's postInstall: a manual page per command and bash, zsh and fish completions" \
    installed_manual

# The same stdenv given the overlay with the prebuilt tool: nix/build-prebuilt.sh's NAR, fetched
# from a file:// URL by the fixed-output derivation of nix/prebuilt.nix. Its setup hook finds the
# tool beside itself; its closure is itself, so the stdenv's allowedRequisites (which building
# the stdenv checks) grow by that one path.
prebuilt_builds() {
    local prebuilt
    prebuilt=$(nix/build-prebuilt.sh "$work/prebuilt") &&
        nix-build --no-out-link tests/nix/setup -A prog.out -A prog.lib "${args[@]}" --arg prebuilt "$prebuilt" \
            >"$work/prebuilt.out" 2>"$work/prebuilt.log" || { tail -n 30 "$work/prebuilt.log"; return 1; }
    # shellcheck disable=SC2016 # a Nix expression
    nix-instantiate --eval --strict --json "${args[@]}" --arg prebuilt "$prebuilt" -E '
        { tree, ldcache, prebuilt }: let pkgs = import ./tests/nix/setup/stdenv.nix {
          inherit tree ldcache prebuilt; }; in {
          hooks = map (input: input.name or (baseNameOf input)) pkgs.stdenv.extraNativeBuildInputs;
          tool = pkgs.ldcache.name; }' >"$work/prebuilt.json" &&
        grep -q '"hooks":\[[^]]*"ldcache-prebuilt"\]' "$work/prebuilt.json" &&
        [ "$(grep -o ldcache-prebuilt "$work/prebuilt.json" | wc -l)" -eq 2 ] ||
        { cat "$work/prebuilt.json"; return 1; }
}
prebuilt_prog() {
    local out lib
    { read -r out && read -r lib; } <"$work/prebuilt.out" &&
        runs "$out/bin/prog" && current "$out/bin/prog" "$lib/lib/libbaz.so" &&
        [ "$(nix-store --read-log "$out" | grep -c '^ldcache: [0-9]* files: ')" -eq 1 ]
}
check "prebuilt tool: the stdenv (within its allowedRequisites) has it as its last hook, once; prog builds" \
    prebuilt_builds
check "prebuilt tool: prog runs, bin/prog and lib/libbaz.so have current notes, one summary line" \
    prebuilt_prog

summary
