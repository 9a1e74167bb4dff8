#!/usr/bin/env bash
# The safety net can catch: the injector built with a deliberate defect (`--cfg ldcache_fault`:
# the old places of moved pieces are not zeroed, see `finish` in crates/inject/src/rewrite.rs)
# must make the system-files test, the corpus suite and the fuzz target fail, on the injector's
# own check. Built in target directories of their own under $LDCACHE_CACHE_DIR, so the normal
# build is untouched; installs cargo-fuzz when missing. Prints one line per check and ends with
# "N passed, M failed".
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=tests/lib.sh
source tests/lib.sh

cache=${LDCACHE_CACHE_DIR:-/var/cache/ldcache}
export LDCACHE_CACHE_DIR=$cache
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
passed=0
failed=0
plan 3
faulty=(env RUSTFLAGS="--cfg ldcache_fault" CARGO_TARGET_DIR="$cache/fault-target")

# fails_with PATTERN LOG COMMAND...: COMMAND fails and LOG (its output) matches PATTERN.
fails_with() {
    local pattern=$1 log=$2
    shift 2
    if "$@" >"$log" 2>&1; then
        echo "  it passed"
        return 1
    fi
    grep -q -- "$pattern" "$log" || { tail -n 20 "$log"; return 1; }
}

check "with the defect, system_files fails on the injector's own check" \
    fails_with "an injector defect, not a refusal" "$work/system.log" \
    "${faulty[@]}" cargo test --release --locked -p ldcache-inject --test system_files
check "with the defect, the corpus suite fails (refusals by the self-check)" \
    fails_with "refusals: .*bound 0.0 %) the rewritten file failed the injector's own check" \
    "$work/corpus.log" \
    "${faulty[@]}" tests/corpus/run.sh

command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked --quiet
mkdir -p "$work/seeds" "$work/corpus"
cp /usr/bin/true "$work/seeds/true"
echo 'int f (void) { return 1; }' | gcc -shared -fPIC -Wl,-rpath,/nix/store/x/lib -x c - \
    -o "$work/seeds/f.so"
# The stable toolchain builds the instrumented target; RUSTC_BOOTSTRAP lets cargo-fuzz pass its
# sanitizer flags to it (as crates/inject/fuzz/run.sh does).
check "with the defect, the fuzz target fails on the injector's own check" \
    fails_with "the injector wrote what its own check rejects" "$work/fuzz.log" \
    env RUSTFLAGS="--cfg ldcache_fault" RUSTC_BOOTSTRAP=1 \
    bash -c 'cd crates/inject/fuzz && exec cargo fuzz run --target-dir "$1" rewrite "$2" "$3" -- \
        -runs=100000 -max_len=65536 -timeout=10' fuzz "$cache/fault-fuzz-target" \
    "$work/corpus" "$work/seeds"

summary
