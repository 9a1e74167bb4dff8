#!/usr/bin/env bash
# End-to-end tests of the ldcache glibc patches (nix/glibc/ldcache-*.patch).
#
# Usage: run.sh GLIBC_VERSION...     (e.g. run.sh 2.40 2.42 2.43 2.44)
#
# For each version, builds (or takes from the cache) a pristine and a patched
# glibc with build-glibc.sh, lays out fixtures like a Nix store, embeds notes with
# patchelf 0.19.3, `ldcache embed` or ldcache_note.py, and compares the two
# loaders (and `ldcache explain`'s predictions with both).  Prints
# one line per check and ends with "N passed, M failed".
#
# Environment: LDCACHE_CACHE_DIR (default /var/cache/ldcache),
# LDCACHE_FUZZ_RUNS (default 1000000), LDCACHE_MUTANTS (default 200),
# LDCACHE_KEEP=1 keeps the work directory.  Run as root: it installs what it
# needs with apt-get and runs setuid fixtures as user nobody.
set -euo pipefail
unset LD_LIBRARY_PATH LD_PRELOAD LD_DEBUG LD_LDCACHE_DISABLE

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
cache=${LDCACHE_CACHE_DIR:-/var/cache/ldcache}
fuzz_runs=${LDCACHE_FUZZ_RUNS:-1000000}
mutants=${LDCACHE_MUTANTS:-200}
note_py=(/usr/bin/python3 "$here/ldcache_note.py")
nlibs=32

passed=0
failed=0
# shellcheck disable=SC2034 # read by check (tests/lib.sh)
check_prefix=

log () { printf '%s\n' "$*" >&2; }
# shellcheck source=../lib.sh
source "$here/../lib.sh"


# Point the fixtures' glibc ($T/glibc, on every RUNPATH and PT_INTERP) at
# the pristine or patched build.
use_glibc () {
  case $1 in
    stock) ln -sfn "$(dirname "$PRISTINE_LIBDIR")" "$T/glibc" ;;
    patched) ln -sfn "$(dirname "$PATCHED_LIBDIR")" "$T/glibc" ;;
  esac
}

# Print the number of failing open and stat calls of COMMAND....
failing_lookups () {
  strace -f -qq -Z -e trace=openat,open,stat,newfstatat,statx -o "$T/strace.out" \
    "$@" > /dev/null 2>&1 || true
  grep -c ' = -1 ' "$T/strace.out" || true
}

# Print the libraries COMMAND loads, as the loader lists them (addresses
# removed).
loaded_files () {
  "$T/glibc/lib/ld-linux-x86-64.so.2" --list "$1" | sed 's/ (0x[0-9a-f]*)$//' | sort
}

# contains TEXT PART: true if TEXT contains PART.
contains () { [[ $1 == *"$2"* ]]; }

# Print a store directory name for NAME.
store_path () {
  echo "${STORE:-$T/store}/$(printf %s "$1" | sha256sum | cut -c1-32)-$1"
}

# lib NAME SOURCE RUNPATH [DEPENDENCIES...]: build lib$NAME.so into its
# store directory; print its path.
lib () {
  local name=$1 src=$2 runpath=$3
  shift 3
  local dir
  dir=$(store_path "$name")/lib
  mkdir -p "$dir"
  gcc -shared -fPIC -o "$dir/lib$name.so" -Wl,-soname,"lib$name.so" \
    -Wl,--enable-new-dtags,-rpath,"$runpath" -Wl,--no-as-needed -x c - -x none "$@" <<< "$src"
  echo "$dir/lib$name.so"
}

# exe OUT SOURCE RUNPATH [LINK ARGUMENTS...]: build an executable with the
# fixtures' glibc as interpreter.
exe () {
  local out=$1 src=$2 runpath=$3
  shift 3
  mkdir -p "$(dirname "$out")"
  gcc -o "$out" -Wl,--dynamic-linker="$T/glibc/lib/ld-linux-x86-64.so.2" \
    -Wl,-rpath,"$runpath" -Wl,--no-as-needed -x c - -x none "$@" <<< "$src"
}

# Print the source of a main printing the sum of val0 () .. val$1 () and
# AT_SECURE.
main_src () {
  local i decls='' sum=0
  for ((i = 0; i <= $1; i++)); do decls+="int val$i (void);"; sum+="+val$i ()"; done
  cat <<EOF
#include <stdio.h>
#include <sys/auxv.h>
$decls
int main (void) { printf ("sum=%d secure=%lu\n", $sum, getauxval (AT_SECURE)); return 0; }
EOF
}

# The store: lib0 .. lib31, each in its own directory, lib i needing lib i-1
# and i-2; the app needing all of them with 42 RUNPATH entries (the 32 lib
# directories in reverse order, 9 empty store directories, glibc last),
# notes written by patchelf (or none with "bare").
build_store () {
  local i libs=() dirs=() runpath
  for ((i = 0; i < nlibs; i++)); do
    local deps=("${libs[@]: -2}") rp=$LIBC d
    for d in "${deps[@]}"; do rp=$(dirname "$d"):$rp; done
    libs+=("$(lib "lib$i" "int val$i (void) { return $i; }" "$rp" "${deps[@]}")")
    dirs=("$(dirname "${libs[-1]}")" "${dirs[@]}")
  done
  for ((i = 0; i < 9; i++)); do
    dirs+=("$(store_path "data$i")/lib")
    mkdir -p "${dirs[-1]}"
  done
  runpath=$(IFS=:; echo "${dirs[*]}"):$LIBC
  APP=${STORE:-$T/store}/app/bin/app
  exe "$APP" "$(main_src $((nlibs - 1)))" "$runpath" -Wl,--enable-new-dtags "${libs[@]}"
  APP_RUNPATH=$runpath
  APP_LIBS=("${libs[@]}")
  [[ ${1-} == bare ]] && return
  local patchelf f
  patchelf=$(patchelf_bin)
  for f in "${libs[@]}" "$APP"; do "$patchelf" --build-resolution-cache "$f"; done
}

# The same store with notes written by `ldcache embed`: the patched loader
# makes no failing lookup, and `ldcache explain` predicts both loaders'
# failing lookups exactly.
test_ldcache_embed () {
  local saved_app=$APP saved_runpath=$APP_RUNPATH saved_libs=("${APP_LIBS[@]}")
  local saved_libc=$LIBC ldcache=$repo/target/release/ldcache stock patched glibc
  # As in Nix, the C library is a store path too (here a link to the fixtures' glibc).
  glibc=$(STORE=$T/ours store_path glibc)
  mkdir -p "$glibc"
  ln -sfn "$T/glibc/lib" "$glibc/lib"
  LIBC=$glibc/lib
  STORE=$T/ours build_store bare
  check "ldcache embed writes every note" \
    grep -q "$((nlibs + 1)) cached" <("$ldcache" embed --store-dir "$T/ours" "$T/ours" 2>&1)
  check "ldcache notes are current" \
    grep -q '"current": true' <("$ldcache" show --json "$APP")
  use_glibc stock
  stock=$(failing_lookups "$APP")
  loaded_files "$APP" > "$T/ours.stock"
  use_glibc patched
  patched=$(failing_lookups "$APP")
  loaded_files "$APP" > "$T/ours.patched"
  echo "  ldcache notes: failing open/stat calls stock $stock, patched $patched"
  check "ldcache notes: patched loader makes no failing lookup" [ "$patched" -eq 0 ]
  check "ldcache notes: both loaders load the same files" cmp -s "$T/ours.stock" "$T/ours.patched"
  check "explain predicts the patched loader ($patched)" \
    [ "$(predicted_failures notes "$APP")" -eq "$patched" ]
  check "explain predicts each of the patched loader's searches: files tried, kept, via" \
    /usr/bin/python3 "$here/../explain_compare.py" "$ldcache" notes "$APP"
  use_glibc stock
  check "explain predicts the stock loader ($stock)" \
    [ "$(predicted_failures off "$APP")" -eq "$stock" ]
  check "explain predicts each of the stock loader's searches: files tried, kept, via" \
    /usr/bin/python3 "$here/../explain_compare.py" "$ldcache" off "$APP"
  APP=$saved_app APP_RUNPATH=$saved_runpath APP_LIBS=("${saved_libs[@]}") LIBC=$saved_libc
}

# predicted_failures CACHE PROGRAM: failing lookups `ldcache explain` predicts.
predicted_failures () {
  "$repo/target/release/ldcache" explain --json --library-path '' --cache "$1" "$2" |
    /usr/bin/python3 -c 'import json, sys; print(json.load(sys.stdin)["failed_lookups"])'
}

test_store () {
  local stock patched out
  use_glibc stock
  stock=$(failing_lookups "$APP")
  out=$("$APP")
  loaded_files "$APP" > "$T/list.stock"
  use_glibc patched
  patched=$(failing_lookups "$APP")
  loaded_files "$APP" > "$T/list.patched"
  echo "  failing open/stat calls for $APP: stock $stock, patched $patched"
  echo "  RUNPATH entries: $(tr : '\n' <<< "$APP_RUNPATH" | wc -l), libraries: $nlibs + libc"
  check "stock loader makes the failing lookups storm (> 100)" [ "$stock" -gt 100 ]
  check "patched loader makes no failing lookup" [ "$patched" -eq 0 ]
  check "both loaders load the same files" cmp -s "$T/list.stock" "$T/list.patched"
  check "app output is the same" [ "$("$APP")" = "$out" ]
  check "LD_DEBUG=libs reports cache hits" \
    grep -q "ldcache: using note of file=$APP" <(LD_DEBUG=libs "$APP" 2>&1)
  check "LD_LDCACHE_DISABLE restores the walk" \
    [ "$(LD_LDCACHE_DISABLE=1 failing_lookups "$APP")" -eq "$stock" ]
  # What the loader says of the notes, to be compared across versions.
  debug_lines "$APP" > "$debug_dir/$GLIBC_VERSION.notes"
  LD_LDCACHE_DISABLE=1 debug_lines "$APP" > "$debug_dir/$GLIBC_VERSION.disabled"
}

# Print the ldcache and "trying file" lines of LD_DEBUG=libs for PROGRAM $1,
# without process ids, with the work directory as T.
debug_lines () {
  LD_DEBUG=libs "$1" 2>&1 > /dev/null | sed -E 's/^ *[0-9]+:[[:space:]]*//' |
    grep -E 'ldcache:|trying file=' | sed "s|$T|T|g"
}

# all_same FILE...: true if every FILE holds the bytes of the first.
all_same () {
  local f
  for f; do cmp -s "$1" "$f" || return 1; done
}

# LD_DEBUG=libs says the same of the notes, with them and without, on every
# version tested.
test_same_debug_output () {
  local kind
  check_prefix="all versions: "
  for kind in notes disabled; do
    check "LD_DEBUG=libs prints the same ldcache and trying lines (${kind/notes/notes used})" \
      all_same "$debug_dir"/*."$kind"
  done
}

test_overrides () {
  local over pre
  over=$(mkdir -p "$T/override" && cd "$T/override" &&
         gcc -shared -fPIC -o liblib5.so -Wl,-soname,liblib5.so -x c - \
           <<< 'int val5 (void) { return 1005; }' && pwd)
  pre=$(lib pre "int val7 (void) { return 1007; }" "$LIBC")
  use_glibc patched
  check "LD_LIBRARY_PATH still wins over the note" \
    grep -q 'sum=1496 ' <(LD_LIBRARY_PATH=$over "$APP")
  check "LD_PRELOAD still works" grep -q 'sum=1496 ' <(LD_PRELOAD=$pre "$APP")
}

# A package with bin/tool finding lib/libtool.so through $ORIGIN/../lib.
build_tool () {
  local patchelf tool_dir
  patchelf=$(patchelf_bin)
  tool_dir=$(store_path tool)
  mkdir -p "$tool_dir/lib"
  gcc -shared -fPIC -o "$tool_dir/lib/libtool.so" -Wl,-soname,libtool.so -x c - \
    <<< 'int tool (void) { return 7; }'
  exe "$tool_dir/bin/tool" '#include <stdio.h>
int tool (void); int main (void) { printf ("tool=%d\n", tool ()); return 0; }' \
    "\$ORIGIN/../lib:$LIBC" -Wl,--enable-new-dtags "$tool_dir/lib/libtool.so"
  "$patchelf" --build-resolution-cache "$tool_dir/bin/tool"
  TOOL=$tool_dir/bin/tool
}

test_origin () {
  use_glibc patched
  local debug
  debug=$(LD_DEBUG=libs "$TOOL" 2>&1)
  check "\$ORIGIN hint resolves through the note" \
    grep -qzP "ldcache: using note of file=\Q$TOOL\E\n[^\n]*search path=[^\n]*/bin/\.\./lib\t" <<< "$debug"
  check "\$ORIGIN tool runs" grep -q 'tool=7' <<< "$debug"
}

# A cached file deleted (moved to a later RUNPATH directory) after the note
# was written.
test_deleted () {
  local patchelf
  patchelf=$(patchelf_bin)
  mkdir -p "$T/del/a" "$T/del/b"
  gcc -shared -fPIC -o "$T/del/a/libdel.so" -Wl,-soname,libdel.so -x c - \
    <<< 'int del (void) { return 1; }'
  exe "$T/del/app" '#include <stdio.h>
int del (void); int main (void) { printf ("del=%d\n", del ()); return 0; }' \
    "$T/del/a:$T/del/b:$LIBC" -Wl,--enable-new-dtags "$T/del/a/libdel.so"
  "$patchelf" --build-resolution-cache "$T/del/app"
  mv "$T/del/a/libdel.so" "$T/del/b/libdel.so"
  use_glibc patched
  check "a deleted cached file falls back to the walk" \
    grep -q 'del=1' <(LD_DEBUG=libs "$T/del/app" 2>&1)
  check "the fallback finds the moved file" \
    grep -q "calling init: $T/del/b/libdel.so" <(LD_DEBUG=libs "$T/del/app" 2>&1)
}

# libv.so in two same-length directories returning 1 and 2; apps with notes
# written by ldcache_note.py, without (0) and with (1) the fingerprint note, whose
# RUNPATH is then edited in place; and one whose fingerprint note claims DT_RPATH.
test_stale () {
  local kind src='#include <stdio.h>
int v (void); int main (void) { printf ("v=%d\n", v ()); return 0; }'
  local rp="$T/stale/x1:$T/stale/x2:$LIBC" edited="$T/stale/x2:$T/stale/x1:$LIBC"
  for kind in 1 2; do
    mkdir -p "$T/stale/x$kind"
    gcc -shared -fPIC -o "$T/stale/x$kind/libv.so" -Wl,-soname,libv.so -x c - \
      <<< "int v (void) { return $kind; }"
  done
  for kind in 0 1; do
    "${note_py[@]}" asm "$T/stale/note$kind.s" --kind "$kind" --runpath "$rp" \
      --need libv.so --need libc.so.6
    exe "$T/stale/app$kind" "$src" "$rp" -Wl,--enable-new-dtags "$T/stale/x1/libv.so" \
      "$T/stale/note$kind.s"
    "${note_py[@]}" edit-dynstr "$T/stale/app$kind" "$rp" "$edited"
  done
  "${note_py[@]}" asm "$T/stale/note2.s" --kind 2 --runpath "$rp" --need libv.so
  exe "$T/stale/app2" "$src" "$rp" -Wl,--enable-new-dtags "$T/stale/x1/libv.so" \
    "$T/stale/note2.s"
  use_glibc stock
  local want
  want=$("$T/stale/app1")
  use_glibc patched
  check "RUNPATH edited after embedding: patched = stock ($want)" \
    [ "$("$T/stale/app1")" = "$want" ]
  check "LD_DEBUG=libs reports the stale note" \
    grep -q "ldcache: note of $T/stale/app1 is stale, ignored" <(LD_DEBUG=libs "$T/stale/app1" 2>&1)
  check "without the fingerprint note the stale cache is used (as upstream)" \
    [ "$("$T/stale/app0")" = v=1 ]
  check "a DT_RPATH note on a DT_RUNPATH object is ignored" \
    grep -q "ldcache: note of $T/stale/app2 is stale, ignored" <(LD_DEBUG=libs "$T/stale/app2" 2>&1)
}

# The answer changes under a current fingerprint: libv.so, first only in x2, is added to x1,
# searched before it. The note still says x2 (the patched loader follows it), until one more
# `ldcache embed` replaces it; then the patched loader takes x1, as the stock one does.
test_replaced () {
  local ldcache=$repo/target/release/ldcache repl=$T/repl src='#include <stdio.h>
int v (void); int main (void) { printf ("v=%d\n", v ()); return 0; }'
  local kind
  for kind in 1 2; do
    mkdir -p "$repl/x$kind"
    gcc -shared -fPIC -o "$T/libv$kind.so" -Wl,-soname,libv.so -x c - \
      <<< "int v (void) { return $kind; }"
  done
  cp "$T/libv2.so" "$repl/x2/libv.so"
  exe "$repl/app" "$src" "$repl/x1:$repl/x2:$LIBC" -Wl,--enable-new-dtags "$repl/x2/libv.so"
  "$ldcache" embed --store-dir "$repl" "$repl/app" 2> /dev/null
  cp "$T/libv1.so" "$repl/x1/libv.so"
  use_glibc patched
  check "the answer changed: the old note is followed (v=2)" [ "$("$repl/app")" = v=2 ]
  check "one more embed replaces the note" \
    grep -q '1 cached, 0 removed, 0 unchanged, 0 skipped, 0 refused' \
    <("$ldcache" embed --store-dir "$repl" "$repl/app" 2>&1)
  check "show names the new place" \
    grep -q "=$repl/x1/libv.so" <("$ldcache" show --json "$repl/app")
  local debug
  debug=$(LD_DEBUG=libs "$repl/app" 2>&1)
  check "the patched loader follows the new note (v=1), trying libv.so in x1 only" \
    eval '[ "$("$repl/app")" = v=1 ] &&
      [ "$(grep -c "trying file=.*/libv.so" <<< "$debug")" -eq 1 ] &&
      grep -q "trying file=$repl/x1/libv.so" <<< "$debug"'
  use_glibc stock
  check "the stock loader agrees (v=1)" [ "$("$repl/app")" = v=1 ]
}

# The app linked with DT_RPATH instead, with a kind 2 note.
test_rpath () {
  local out i need=(--need libc.so.6)
  for ((i = 0; i < nlibs; i++)); do need+=(--need "liblib$i.so"); done
  "${note_py[@]}" asm "$T/rpath.s" --kind 2 --runpath "$APP_RUNPATH" "${need[@]}"
  exe "$T/app/bin/rpath-app" "$(main_src $((nlibs - 1)))" "$APP_RUNPATH" \
    -Wl,--disable-new-dtags "${APP_LIBS[@]}" "$T/rpath.s"
  use_glibc stock
  out=$("$T/app/bin/rpath-app")
  local stock patched
  stock=$(failing_lookups "$T/app/bin/rpath-app")
  use_glibc patched
  patched=$(failing_lookups "$T/app/bin/rpath-app")
  echo "  failing open/stat calls for the DT_RPATH app: stock $stock, patched $patched"
  check "DT_RPATH object: note serves its own RPATH step" \
    [ "$patched" -eq 0 -a "$stock" -gt 100 ]
  check "DT_RPATH app output is the same" [ "$("$T/app/bin/rpath-app")" = "$out" ]
}

# liblooper.so dlopens libplugin.so (in its note) and libnothere.so (not).
test_dlopen () {
  local plugin looper_dir rp
  plugin=$(lib plugin "int plugin (void) { return 42; }" "$LIBC")
  looper_dir=$(store_path looper)/lib
  rp="$(store_path data0)/lib:$(dirname "$plugin"):$LIBC"
  "${note_py[@]}" asm "$T/looper.s" --runpath "$rp" --need libplugin.so --need libc.so.6
  mkdir -p "$looper_dir"
  gcc -shared -fPIC -o "$looper_dir/liblooper.so" -Wl,-soname,liblooper.so \
    -Wl,--enable-new-dtags,-rpath,"$rp" "$T/looper.s" -x c - <<'EOF'
#include <dlfcn.h>
int looper (void)
{
  void *h = dlopen ("libplugin.so", RTLD_NOW);
  int (*f) (void) = h ? (int (*) (void)) dlsym (h, "plugin") : 0;
  return (f ? f () : -1) + (dlopen ("libnothere.so", RTLD_NOW) == 0 ? 0 : 1000);
}
EOF
  exe "$T/dlapp" '#include <stdio.h>
int looper (void); int main (void) { printf ("looper=%d\n", looper ()); return 0; }' \
    "$looper_dir:$LIBC" -Wl,--enable-new-dtags "$looper_dir/liblooper.so"
  "$(patchelf_bin)" --build-resolution-cache "$T/dlapp"
  use_glibc patched
  local debug
  debug=$(LD_DEBUG=libs "$T/dlapp" 2>&1)
  check "dlopen uses the dlopening object's note" \
    grep -qzP "find library=libplugin.so \[0\]; searching\n[^\n]*ldcache: using note of file=\Q$looper_dir/liblooper.so\E\n[^\n]*trying file=\Q$plugin\E\n" <<< "$debug"
  check "LD_DEBUG=libs reports cache misses" \
    grep -qzP "find library=libnothere.so \[0\]; searching\n[^\n]*ldcache: no entry in note of file=\Q$looper_dir\E" <<< "$debug"
  check "dlopen app runs" grep -q 'looper=42' <<< "$debug"
}

# Setuid-root copies run by user nobody (AT_SECURE).
test_secure () {
  local app=$T/app/bin/app-suid tool=${TOOL%/*}/tool-suid
  cp "$APP" "$app"
  cp "$TOOL" "$tool"
  chmod 4755 "$app" "$tool"
  # shellcheck disable=SC2054 # the commas belong to strace's -e
  local as_nobody=(strace -u nobody -f -qq -Z -e trace=openat,open,stat,newfstatat,statx
                   -o "$T/strace.out")
  use_glibc patched
  check "setuid app runs in secure mode" \
    grep -q 'sum=496 secure=1' <(setpriv --reuid=nobody --regid=nogroup --clear-groups "$app")
  "${as_nobody[@]}" "$app" > /dev/null 2>&1 || true
  check "secure mode: the note is used (no failing lookup)" \
    [ "$(grep -c ' = -1 ' "$T/strace.out")" -eq 0 ]
  LD_LDCACHE_DISABLE=1 "${as_nobody[@]}" "$app" > /dev/null 2>&1 || true
  check "secure mode: LD_LDCACHE_DISABLE is honoured" \
    [ "$(grep -c ' = -1 ' "$T/strace.out")" -gt 100 ]
  local stock patched
  use_glibc stock
  stock=$(setpriv --reuid=nobody --regid=nogroup --clear-groups "$tool" 2>&1 || true)
  use_glibc patched
  patched=$(setpriv --reuid=nobody --regid=nogroup --clear-groups "$tool" 2>&1 || true)
  "${as_nobody[@]}" "$tool" > /dev/null 2>&1 || true
  check "secure mode: \$ORIGIN hint not used (stock fails alike)" \
    [ "$patched" = "$stock" ]
  check "secure mode: the \$ORIGIN library is not found" \
    contains "$patched" "libtool.so: cannot open shared object file"
  check "secure mode: no lookup in the \$ORIGIN directory" \
    [ "$(grep -c '/bin/\.\./lib' "$T/strace.out")" -eq 0 ]
}

# Hostile notes: mutants of an app with ldcache_note.py notes must run as
# with no note.  Mutants the stock loader cannot run either are skipped.
test_hostile () {
  local rp
  rp=$(dirname "${APP_LIBS[1]}"):$(dirname "${APP_LIBS[0]}"):$LIBC
  "${note_py[@]}" asm "$T/hostile.s" --runpath "$rp" --need liblib0.so \
    --need liblib1.so --need libc.so.6
  exe "$T/hostile/base" "$(main_src 1)" "$rp" -Wl,--enable-new-dtags \
    "${APP_LIBS[0]}" "${APP_LIBS[1]}" "$T/hostile.s"
  local seed ok=0 skipped=0 bad=() want='sum=1 secure=0' used=0 rejected=0
  for ((seed = 1; seed <= mutants; seed++)); do
    "${note_py[@]}" mutate "$T/hostile/base" "$T/hostile/m$seed" "$seed" > "$T/hostile/m$seed.what"
  done
  use_glibc stock
  for ((seed = 1; seed <= mutants; seed++)); do
    [[ $("$T/hostile/m$seed" 2> /dev/null) == "$want" ]] || { skipped=$((skipped + 1)); rm "$T/hostile/m$seed"; }
  done
  use_glibc patched
  for ((seed = 1; seed <= mutants; seed++)); do
    [[ -e $T/hostile/m$seed ]] || continue
    if [[ $(LD_DEBUG=libs "$T/hostile/m$seed" 2> "$T/debug") == "$want" ]]; then
      ok=$((ok + 1))
      if grep -q 'ldcache: using note' "$T/debug"; then
        used=$((used + 1))
      elif grep -q 'ldcache: note of .* ignored' "$T/debug"; then
        rejected=$((rejected + 1))
      fi
    else
      bad+=("m$seed ($(cat "$T/hostile/m$seed.what"))")
    fi
  done
  echo "  hostile notes: $mutants mutants, $ok ran correctly, ${#bad[@]} failed, $skipped skipped (stock fails too)"
  echo "  hostile notes: the loader used $used, rejected $rejected, did not find $((ok - used - rejected))"
  ((${#bad[@]} == 0)) || printf '  failed: %s\n' "${bad[@]}"
  check "hostile notes never break the patched loader" [ "${#bad[@]}" -eq 0 -a "$ok" -gt 0 ]
  check "at most a tenth of the mutants skipped ($skipped)" [ "$skipped" -le $((mutants / 10)) ]

  # valgrind's own ELF reader gives up on a broken PT_NOTE header: run it on
  # mutants of the notes only.
  local runs=0 vg_bad=0
  for ((seed = 1; seed <= mutants && runs < 8; seed++)); do
    [[ -e $T/hostile/m$seed ]] && ! grep -q PT_NOTE "$T/hostile/m$seed.what" || continue
    runs=$((runs + 1))
    if ! valgrind -q --error-exitcode=99 "$T/hostile/m$seed" > /dev/null 2> "$T/valgrind.out" ||
       grep -q 'Invalid read' "$T/valgrind.out"; then
      vg_bad=$((vg_bad + 1))
      sed 's/^/  valgrind: /' "$T/valgrind.out" | head -n 20
    fi
  done
  check "valgrind: no invalid read on $runs hostile mutants" [ "$vg_bad" -eq 0 -a "$runs" -gt 0 ]
}

# The note parser alone under libFuzzer and AddressSanitizer.
test_fuzz () {
  local dir=$T/fuzz
  mkdir -p "$dir/corpus"
  clang -g -O1 -Werror -fsanitize=fuzzer,address -I"$PATCHED_FILES/elf" \
    "$here/fuzz-ldcache.c" -o "$dir/fuzz-ldcache"
  "${note_py[@]}" seed "$dir/corpus/runpath" --runpath '/a:$ORIGIN/b' \
    --entry 'liba.so=/a/liba.so:?$ORIGIN/b' --entry 'libb.so=?$ORIGIN/b'
  "${note_py[@]}" seed "$dir/corpus/rpath" --kind 2 --runpath /x --entry 'libx.so=/x/libx.so'
  local cmd=("$dir/fuzz-ldcache" -runs="$fuzz_runs" -seed=1 "$dir/corpus")
  echo "  fuzz: ${cmd[*]}"
  "${cmd[@]}" > "$dir/log" 2>&1 || true
  echo "  fuzz: $(grep -E '^Done|ERROR' "$dir/log" | head -n 1)"
  check "fuzzer: $fuzz_runs runs without a finding" grep -q "^Done $fuzz_runs runs" "$dir/log"
}

# Startup time, stock vs patched (a report, not a check).
report_speed () {
  local v
  for v in stock patched; do
    use_glibc "$v"
    hyperfine -N --warmup 10 --runs 50 --export-json "$T/hyperfine-$v.json" "$APP" > /dev/null 2>&1
  done
  /usr/bin/python3 - "$T/hyperfine-stock.json" "$T/hyperfine-patched.json" <<'EOF'
import json, sys
s, p = (json.load(open(f))["results"][0] for f in sys.argv[1:])
print(f"  startup (hyperfine, 50 warm runs): stock {s['mean']*1e3:.2f} ms ± {s['stddev']*1e3:.2f}, "
      f"patched {p['mean']*1e3:.2f} ms ± {p['stddev']*1e3:.2f}, stock/patched = {s['mean']/p['mean']:.2f}")
EOF
}

# Run every test on glibc VERSION $1, pristine and patched.
test_version () {
  local version=$1 key value
  log "== glibc $version"
  while IFS='=' read -r key value; do
    printf -v "$key" %s "$value"
  done < <(bash "$here/build-glibc.sh" "$version")
  [[ ${GLIBC_VERSION-} == "$version" ]] || { log "build-glibc.sh $version failed"; exit 1; }

  T=$(mktemp -d "$cache/run.XXXXXX")
  chmod 755 "$T"
  [[ -n ${LDCACHE_KEEP-} ]] || trap 'rm -rf "$T"' EXIT
  LIBC=$T/glibc/lib
  use_glibc stock

  build_store
  build_tool
  test_store
  test_ldcache_embed
  test_overrides
  test_origin
  test_deleted
  test_stale
  test_replaced
  test_rpath
  test_dlopen
  test_secure
  test_hostile
  test_fuzz
  report_speed
  [[ -n ${LDCACHE_KEEP-} ]] || rm -rf "$T"
}

main () {
  [[ $(id -u) == 0 ]] || { log "run.sh must run as root (apt-get, setuid fixtures)"; exit 2; }
  (($#)) || { log "usage: run.sh GLIBC_VERSION..."; exit 2; }
  ensure_packages gcc libc6-dev make strace valgrind hyperfine clang libclang-rt-14-dev \
    python3 python3-venv util-linux
  (cd "$repo" && cargo build --release --locked --quiet --bin ldcache)
  mkdir -p "$cache"
  debug_dir=$(mktemp -d)
  # 44 checks per version, and 2 comparing the versions' debug output when there are several.
  plan $((44 * $# + ($# > 1 ? 2 : 0)))
  local version
  for version; do
    check_prefix="$version: "
    test_version "$version"
  done
  (($# > 1)) && test_same_debug_output
  rm -rf "$debug_dir"
  summary
}

main "$@"
