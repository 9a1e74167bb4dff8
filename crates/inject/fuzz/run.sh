#!/usr/bin/env bash
# Runs a cargo-fuzz (libFuzzer) target of the injector:
#   rewrite  the reader, the note decoders and the injector on arbitrary bytes (seeds: small ELF
#            files of this system and fixtures compiled here);
#   oracle   damage to a correct rewrite of /usr/bin/true: every damaged file the oracle accepts
#            must run as the original.
# Corpora and the build live outside the checkout, under $LDCACHE_CACHE_DIR.
# Usage: crates/inject/fuzz/run.sh [TARGET] [RUNS]   (default: rewrite, 1000000 executions)
set -euo pipefail
cd "$(dirname "$0")"
target=${1:-rewrite}
runs=${2:-1000000}
cache=${LDCACHE_CACHE_DIR:-/var/cache/ldcache}
work=$cache/fuzz-inject
mkdir -p "$work/corpus" "$work/seeds" "$work/$target"

command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
corpora=()
case $target in
  rewrite)
    if [ -z "$(ls -A "$work/seeds")" ]; then
      cp /bin/true "$work/seeds/true"
      for lib in libz.so.1 libacl.so.1 libattr.so.1; do
        [ -e "/lib/x86_64-linux-gnu/$lib" ] && cp -L "/lib/x86_64-linux-gnu/$lib" "$work/seeds/$lib"
      done
      printf 'int f(void) { return 1; }\n' > "$work/f.c"
      gcc -shared -fPIC -Wl,-rpath,/nix/store/x/lib -o "$work/seeds/f.so" "$work/f.c"
      gcc -shared -fPIC -m32 -o "$work/seeds/f32.so" "$work/f.c"
      gcc -shared -fPIC -Wl,-z,noseparate-code -o "$work/seeds/f-nosep.so" "$work/f.c"
    fi
    corpora=("$work/corpus" "$work/seeds")
    limits=(-max_len=65536)
    ;;
  oracle)
    corpora=("$work/oracle")
    limits=(-max_len=64) # up to 16 damaged bytes
    ;;
  *) echo "fuzz/run.sh: no target $target (rewrite, oracle)" >&2; exit 2 ;;
esac
# The stable toolchain builds the instrumented target; RUSTC_BOOTSTRAP lets cargo-fuzz pass its
# sanitizer flags to it.
RUSTC_BOOTSTRAP=1 cargo fuzz run --target-dir "$cache/fuzz-target" "$target" "${corpora[@]}" -- \
  -runs="$runs" "${limits[@]}" -timeout=10 -print_final_stats=1
