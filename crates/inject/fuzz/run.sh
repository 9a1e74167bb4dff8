#!/usr/bin/env bash
# Fuzzes the reader, the note decoders and the injector with cargo-fuzz (libFuzzer).
# Seeds are small ELF files of this system and fixtures compiled here, kept outside the checkout.
# Usage: crates/inject/fuzz/run.sh [RUNS]   (default 1000000 executions)
set -euo pipefail
cd "$(dirname "$0")"
runs=${1:-1000000}
work=${LDCACHE_CACHE_DIR:-/var/cache/ldcache}/fuzz-inject
mkdir -p "$work/corpus" "$work/seeds"

command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
if [ -z "$(ls -A "$work/seeds")" ]; then
  cp /bin/true "$work/seeds/true"
  for lib in libz.so.1 libacl.so.1 libattr.so.1; do
    [ -e "/lib/x86_64-linux-gnu/$lib" ] && cp -L "/lib/x86_64-linux-gnu/$lib" "$work/seeds/$lib"
  done
  printf 'int f(void) { return 1; }\n' > "$work/f.c"
  gcc -shared -fPIC -Wl,-rpath,/nix/store/x/lib -o "$work/seeds/f.so" "$work/f.c"
  gcc -shared -fPIC -m32 -o "$work/seeds/f32.so" "$work/f.c" 2>/dev/null || true
  gcc -shared -fPIC -Wl,-z,noseparate-code -o "$work/seeds/f-nosep.so" "$work/f.c"
fi
# The stable toolchain builds the instrumented target; RUSTC_BOOTSTRAP lets cargo-fuzz pass its
# sanitizer flags to it.
RUSTC_BOOTSTRAP=1 cargo fuzz run rewrite "$work/corpus" "$work/seeds" -- \
  -runs="$runs" -max_len=65536 -timeout=10 -print_final_stats=1
