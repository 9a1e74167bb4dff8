#!/usr/bin/env bash
# Peak memory (maximum resident set size, /usr/bin/time) of `ldcache embed` and `ldcache show`
# on a 1 GiB shared library (a small library given a 1 GiB non-loaded section, in a store-like
# tree) and of `embed` on the corpus (tests/corpus/prepare.sh), for each ldcache binary given, so
# that two versions can be compared. Resident pages of a mapped file count, although the kernel
# may drop them at any time.
#
# Usage: bench/memory.sh LDCACHE...     e.g. bench/memory.sh /tmp/ldcache-before target/release/ldcache
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -gt 0 ] || { sed -n '2,9p' "$0" >&2; exit 2; }

cache=${LDCACHE_CACHE_DIR:-/var/cache/ldcache}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

store=$work/store
mkdir -p "$store/a/lib" "$store/b/lib"
echo 'int f(void) { return 1; }' >"$work/f.c"
echo 'int f(void); int g(void) { return f(); }' >"$work/g.c"
gcc -shared -fPIC -o "$store/a/lib/libf.so" "$work/f.c"
gcc -shared -fPIC -o "$work/g.so" "$work/g.c" -L"$store/a/lib" -lf \
    -Wl,--enable-new-dtags,-rpath,"$store/b/lib:$store/a/lib"
head -c 1073741824 /dev/zero >"$work/blob"
objcopy --add-section .big="$work/blob" --set-section-flags .big=noload,readonly \
    "$work/g.so" "$work/pristine.so"
rm "$work/blob"
big=$store/b/lib/libg.so

# peak COMMAND...: "seconds MiB" of one run.
peak() {
    /usr/bin/time -f '%e %M' -o "$work/time" "$@" >/dev/null 2>&1 || { echo "failed: $*" >&2; exit 1; }
    awk '{ printf "%.2f s, %.0f MiB", $1, $2 / 1024 }' "$work/time"
}

corpus=$(ls -d "$cache"/corpus/*/pristine 2>/dev/null | head -1)
printf '| ldcache | embed, 1 GiB file | show, 1 GiB file | embed, corpus |\n| --- | --- | --- | --- |\n'
for ldcache in "$@"; do
    cp "$work/pristine.so" "$big"
    embed=$(peak "$ldcache" embed --store-dir "$store" "$big")
    show=$(peak "$ldcache" show "$big")
    whole=n/a
    if [ -n "$corpus" ]; then
        rm -rf "${corpus%/pristine}/store" && cp -a "$corpus" "${corpus%/pristine}/store"
        whole=$(peak "$ldcache" embed --store-dir "${corpus%/pristine}/store" "${corpus%/pristine}/store")
        rm -rf "${corpus%/pristine}/store"
    fi
    printf '| `%s` | %s | %s | %s |\n' "$ldcache" "$embed" "$show" "$whole"
done
