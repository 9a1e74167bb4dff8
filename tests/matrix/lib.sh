# Shared by native.sh and cross.sh: packages, the tool, the fixture, the checks, the counters.
# shellcheck shell=bash

MATRIX_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$MATRIX_DIR/../.." && pwd)
FIXTURE=$MATRIX_DIR/fixture
LDCACHE=$ROOT/target/release/ldcache
PY=/usr/bin/python3
CHECK_PY=$MATRIX_DIR/check_elf.py

PASSED=0
FAILED=0
FAILURES=()

# The scripts' options: [-k] [FILTER] -> KEEP (1 keeps the work directory), FILTER.
parse_options() {
  KEEP=0
  if [ "${1:-}" = -k ]; then
    KEEP=1
    shift
  fi
  FILTER=${1:-}
}

ok() {
  PASSED=$((PASSED + 1))
  echo "ok $*"
}

fail() {
  FAILED=$((FAILED + 1))
  FAILURES+=("$*")
  echo "FAIL $*"
}

# check NAME COMMAND...: one line, ok or FAIL; the command's output is shown only on failure.
check() {
  local name=$1 out
  shift
  if out=$("$@" 2>&1); then
    ok "$name"
  else
    fail "$name"
    [ -z "$out" ] || printf '%s\n' "$out" | head -20 | sed 's/^/    /'
  fi
}

# plan_configurations N: the configurations the run will check, said first; `finish` fails the
# run when another number was checked (one skipped by a condition, or a build that failed).
plan_configurations() {
  PLANNED=$1
  echo "plan: $1 configurations"
}

finish() {
  if [ -n "${PLANNED-}" ] && [ "$CONFIGS_CHECKED" -ne "$PLANNED" ]; then
    fail "the plan: $PLANNED configurations planned, $CONFIGS_CHECKED checked"
  fi
  if [ "$FAILED" -gt 0 ]; then
    echo "failures:"
    printf '  %s\n' "${FAILURES[@]}"
  fi
  echo "$PASSED passed, $FAILED failed"
  [ "$FAILED" -eq 0 ]
}

# need_packages PKG...: installs (as root, non-interactively) the packages that are not installed.
need_packages() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    echo "missing packages (run as root to install them): ${missing[*]}" >&2
    return 1
  fi
  echo "installing: ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >&2
  nice apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
}

# build_tool: cargo build --release when the binary is missing or older than a source. A failed
# build ends the script as one failed check. LDCACHE_NO_BUILD=1 tests the binary as it is.
build_tool() {
  local newer=""
  if [ -x "$LDCACHE" ]; then
    [ "${LDCACHE_NO_BUILD:-0}" = 1 ] && return 0
    newer=$(find "$ROOT/crates" "$ROOT/Cargo.toml" "$ROOT/Cargo.lock" -type f -newer "$LDCACHE" \
      \( -name '*.rs' -o -name 'Cargo.toml' -o -name 'Cargo.lock' \) -not -path '*/target/*' -print -quit)
  fi
  if [ ! -x "$LDCACHE" ] || [ -n "$newer" ]; then
    echo "building ldcache (cargo build --release)" >&2
    if ! (cd "$ROOT" && nice cargo build --release -j2 -q) >&2; then
      fail "cargo build --release"
      finish
      exit 1
    fi
  fi
}

# tool_info: which ldcache the results are for (the source tree may be edited while scripts run).
tool_info() {
  local head dirty=""
  head=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)
  git -C "$ROOT" diff --no-ext-diff --quiet HEAD -- crates Cargo.toml Cargo.lock 2>/dev/null || dirty=" + uncommitted changes"
  echo "ldcache: $LDCACHE, sha256 $(sha256sum "$LDCACHE" | cut -c1-16), built $(date -r "$LDCACHE" '+%F %T'), sources at $head$dirty"
}

# Store layout: Nix-like store paths, ten RUNPATH entries per program, most of them empty.
HASH_NAME=0a3l9c1v8m5zq2kx7wf4r6hd0nyb3gsp-name-1.0
HASH_GREET=1b4m0d2w9n6zr3ly8xg5s7jf1pzc4hsq-greet-1.0
HASH_PLUGIN=2c5n1f3x0p7zs4mz9yh6v8kg2qad5jsr-plugin-1.0
EMPTY_DIRS=(3d6p2g4y1q8zv5nw0zi7w9lh3rbf6kvs-zlib-1.3 4f7q3h5z2r9zw6px1zj8x0mi4scg7lwv-openssl-3.0
  5g8r4i6z3s0zx7qy2zk9y1nj5vdh8mxw-glibc-2.36 6h9s5j7z4v1zy8rz3zl0z2pk6wfi9nyz-gcc-12-lib
  7i0v6k8z5w2zz9sz4zm1z3ql7xgj0pzy-bzip2-1.0 8j1w7l9z6x3zz0vz5zn2z4rm8ygk1qzz-xz-5.4
  9k2x8m0z7y4zz1wz6zo3z5sn9zhl2rzz-libffi-3.4)

# make_store T: the directories; prints nothing. Sets STORE, LIBNAME_DIR, LIBGREET_DIR, PLUGIN_DIR,
# RPATH_LIB (for libgreet and libplugin) and RPATH_BIN (for the program).
make_store() {
  local t=$1 d
  STORE=$t/store
  LIBNAME_DIR=$STORE/$HASH_NAME/lib
  LIBGREET_DIR=$STORE/$HASH_GREET/lib
  PLUGIN_DIR=$STORE/$HASH_PLUGIN/lib
  mkdir -p "$LIBNAME_DIR" "$LIBGREET_DIR" "$PLUGIN_DIR" "$t/bin"
  for d in "${EMPTY_DIRS[@]}"; do mkdir -p "$STORE/$d/lib"; done
  local e=("${EMPTY_DIRS[@]/#/$STORE/}")
  e=("${e[@]/%//lib}")
  RPATH_LIB="${e[0]}:${e[1]}:$LIBNAME_DIR:${e[2]}"
  RPATH_BIN="${e[0]}:${e[1]}:${e[2]}:$LIBGREET_DIR:${e[3]}:${e[4]}:$LIBNAME_DIR:${e[5]}:$PLUGIN_DIR:${e[6]}"
}

# build_fixture T CC MODE CFLAGS LDFLAGS: the three libraries and the program, into T/store, T/bin.
#   MODE: pie | nopie | static-pie | static (static modes link the program with archives).
# CFLAGS/LDFLAGS are single strings split on spaces. Log in T/build.log. Search paths are written
# as DT_RUNPATH, or as DT_RPATH with DTAGS=--disable-new-dtags.
build_fixture() {
  local t=$1 cc=$2 mode=$3 cflags=$4 ldflags=$5
  make_store "$t"
  local log=$t/build.log
  # shellcheck disable=SC2086
  {
    $cc $cflags -fPIC -c -o "$t/name.o" "$FIXTURE/name.c" &&
      $cc $cflags -fPIC -c -o "$t/greet.o" "$FIXTURE/greet.c" &&
      $cc $cflags -fPIC -c -o "$t/plugin.o" "$FIXTURE/plugin.c" &&
      $cc $cflags -shared $ldflags -Wl,-soname,libname.so -o "$LIBNAME_DIR/libname.so" "$t/name.o" &&
      $cc $cflags -shared $ldflags -Wl,-soname,libgreet.so -o "$LIBGREET_DIR/libgreet.so" "$t/greet.o" \
        -L"$LIBNAME_DIR" -lname -Wl,"${DTAGS:---enable-new-dtags}",-rpath,"$RPATH_LIB" &&
      $cc $cflags -shared $ldflags -Wl,-soname,libplugin.so -o "$PLUGIN_DIR/libplugin.so" "$t/plugin.o" \
        -L"$LIBNAME_DIR" -lname -Wl,"${DTAGS:---enable-new-dtags}",-rpath,"$RPATH_LIB" &&
      case $mode in
        pie)
          $cc $cflags -fPIE -pie $ldflags -o "$t/bin/greet" "$FIXTURE/main.c" \
            -L"$LIBGREET_DIR" -lgreet -Wl,"${DTAGS:---enable-new-dtags}",-rpath,"$RPATH_BIN" -ldl
          ;;
        nopie)
          $cc $cflags -fno-PIE -no-pie $ldflags -o "$t/bin/greet" "$FIXTURE/main.c" \
            -L"$LIBGREET_DIR" -lgreet -Wl,"${DTAGS:---enable-new-dtags}",-rpath,"$RPATH_BIN" -ldl
          ;;
        static | static-pie)
          local flag=-static pic=-fno-PIE
          [ "$mode" = static-pie ] && flag=-static-pie pic=-fPIE
          ${AR:-ar} rcs "$t/libgreetall.a" "$t/greet.o" "$t/name.o" &&
            $cc $cflags $pic -DNO_DLOPEN $flag $ldflags -o "$t/bin/greet" "$FIXTURE/main.c" "$t/libgreetall.a"
          ;;
        *)
          echo "unknown mode $mode"
          false
          ;;
      esac
  } >"$log" 2>&1
  local rc=$?
  rm -f "$t"/*.o "$t"/*.a
  return $rc
}

# elf_files DIR...: regular files starting with the ELF magic, sorted.
elf_files() {
  find "$@" -type f -print0 | sort -z | while IFS= read -r -d '' f; do
    [ "$(head -c 4 "$f" | od -An -tx1 | tr -d ' \n')" = 7f454c46 ] && printf '%s\n' "$f"
  done
  return 0
}

# snapshot T NAME: copies T/store and T/bin to T/NAME/ (modes and times kept).
snapshot() {
  rm -rf "${1:?}/$2"
  mkdir -p "$1/$2"
  cp -a "$1/store" "$1/bin" "$1/$2/"
}

# copy_of T NAME FILE: the path of FILE (under T) in snapshot NAME.
copy_of() {
  printf '%s/%s/%s\n' "$1" "$2" "${3#"$1"/}"
}

# record_runs T OUT RUNNER...: runs T/bin/greet for each argv case, output and exit status to OUT.
# RUNNER is an optional command prefix (qemu-user for cross). LD_LIBRARY_PATH is cleared.
ARGV_CASES=("" "Ada" "zeta alpha mu")
record_runs() {
  local t=$1 out=$2 c rc
  shift 2
  : >"$out"
  for c in "${ARGV_CASES[@]}"; do
    echo "== argv: $c" >>"$out"
    set +e
    # shellcheck disable=SC2086
    env -u LD_LIBRARY_PATH -u LD_PRELOAD "$@" "$t/bin/greet" $c >>"$out" 2>&1
    rc=$?
    set -e
    echo "== status: $rc" >>"$out"
  done
}

# json_field FILE KEY: one scalar (a list gives its length) of the embed summary.
json_field() {
  "$PY" -c 'import json,sys
v = json.load(open(sys.argv[1]))[sys.argv[2]]
print(len(v) if isinstance(v, (list, dict)) else v)' "$1" "$2"
}

# json_refusals FILE: "path: reason" per refused file and per error.
json_refusals() {
  "$PY" -c 'import json,sys
d = json.load(open(sys.argv[1]))
for r in d["refused"]: print("refused %s: %s" % (r["path"], r["reason"]))
for e in d["errors"]: print("error %s" % (e,))' "$1"
}

# show_state FILE: "note current" from ldcache show --json, e.g. "true true" or "false false";
# "error: ..." when show fails.
show_state() {
  local out
  if out=$("$LDCACHE" show --json "$1" 2>&1); then
    printf '%s' "$out" | "$PY" -c 'import json,sys
d = json.load(sys.stdin)
print(str(d["note"]).lower(), str(d.get("current", "-")).lower())'
  else
    echo "error: $out"
  fi
}

# has_needed FILE: has DT_NEEDED entries, i.e. the injector may give it a note (static and
# static-pie programs have none).
has_needed() {
  readelf -dW "$1" 2>/dev/null | grep -q '(NEEDED)'
}

# files_identical A B...: cmp for pairs "orig new" given as arguments.
files_identical() {
  while [ $# -ge 2 ]; do
    cmp -s "$1" "$2" || {
      echo "differs: $2"
      return 1
    }
    shift 2
  done
}

# Totals for the summary lines.
CONFIGS_CHECKED=0
FILES_CHECKED=0

# Refusals that are understood and accepted: "LABEL-GLOB|FILE-GLOB|REASON-SUBSTRING" (set by the
# calling script). A refusal that matches none is a failure.
KNOWN_REFUSALS=()

known_refusal() { # LABEL FILE REASON
  local k glob fglob why
  for k in "${KNOWN_REFUSALS[@]}"; do
    IFS='|' read -r glob fglob why <<<"$k"
    # shellcheck disable=SC2053
    [[ $1 == $glob && $2 == $fglob && $3 == *"$why"* ]] && return 0
  done
  return 1
}

# wants_note FILE: one of the files the fixture gives needed libraries in the store.
wants_note() {
  case $1 in */libgreet.so | */libplugin.so | */bin/greet) has_needed "$1" ;; *) return 1 ;; esac
}

# check_embedded LABEL T RUN RUNNER...: the checks of one built configuration (T/store, T/bin).
# RUN: "run" to run the program (with RUNNER, empty natively, qemu-user for cross) or "norun".
# Snapshots: T/orig (as built), T/embedded (after the first embed).
check_embedded() {
  local label=$1 t=$2 run=$3
  shift 3
  local runner=("$@") f o st files=() noted=() refused=() expected=0 bad out

  CONFIGS_CHECKED=$((CONFIGS_CHECKED + 1))
  mapfile -t files < <(elf_files "$t/store" "$t/bin")
  FILES_CHECKED=$((FILES_CHECKED + ${#files[@]}))
  snapshot "$t" orig

  if [ "$run" = run ]; then
    record_runs "$t" "$t/run.orig" "${runner[@]}"
    if grep -q '^total ' "$t/run.orig" && grep -q '^argc 4$' "$t/run.orig" &&
      ! grep -q '^dlopen .*failed' "$t/run.orig"; then
      ok "$label: program runs (3 argv cases, statuses $(grep '^== status' "$t/run.orig" | awk '{printf "%s%s", s, $3; s=","}'))"
    else
      fail "$label: program does not run as built"
      sed 's/^/    /' "$t/run.orig" | head -10
      return 0
    fi
  fi

  # 1. embed: nothing refused but the known cases, no error, a note for each file that wants one
  if ! "$LDCACHE" embed --json --store-dir "$t/store" "$t/store" "$t/bin" >"$t/embed1.json" 2>"$t/embed1.err"; then
    fail "$label: embed exited non-zero"
    sed 's/^/    /' "$t/embed1.err" | head -10
    return 0
  fi
  mapfile -t refused < <("$PY" -c 'import json,sys
for r in json.load(open(sys.argv[1]))["refused"]: print(r["path"] + "\t" + r["reason"])' "$t/embed1.json")
  local r rpath rwhy refused_paths=" "
  for r in "${refused[@]}"; do
    rpath=${r%%$'\t'*} rwhy=${r#*$'\t'}
    refused_paths+="$rpath "
    if known_refusal "$label" "$rpath" "$rwhy" && cmp -s "$rpath" "$(copy_of "$t" orig "$rpath")"; then
      ok "$label: ${rpath#"$t"/} refused (known: $rwhy), left byte-identical"
    else
      fail "$label: ${rpath#"$t"/} refused: $rwhy"
    fi
  done
  for f in "${files[@]}"; do
    [[ $refused_paths == *" $f "* ]] && continue
    if wants_note "$f"; then
      noted+=("$f")
      expected=$((expected + 1))
    fi
  done
  local cached errors
  cached=$(json_field "$t/embed1.json" cached)
  errors=$(json_field "$t/embed1.json" errors)
  if [ "$errors" = 0 ] && [ "$cached" = "$expected" ]; then
    ok "$label: embed: ${#files[@]} ELF files, cached $cached, skipped $(json_field "$t/embed1.json" skipped) $("$PY" -c 'import json,sys; print(json.dumps(json.load(open(sys.argv[1]))["skipped_reasons"], sort_keys=True))' "$t/embed1.json")"
  else
    fail "$label: embed: cached $cached (expected $expected), errors $errors"
    json_refusals "$t/embed1.json" | sed 's/^/    /'
  fi
  snapshot "$t" embedded

  # verify_all WHAT: ldcache verify of every ELF file against its original (refused files: cmp)
  verify_all() {
    bad=()
    for f in "${files[@]}"; do
      o=$(copy_of "$t" orig "$f")
      if [[ $refused_paths == *" $f "* ]]; then
        cmp -s "$o" "$f" || bad+=("${f#"$t"/}: refused but changed")
      elif ! out=$("$LDCACHE" verify "$o" "$f" 2>&1); then
        bad+=("${f#"$t"/}: ${out#"ldcache: $f: "}")
      fi
    done
    if [ ${#bad[@]} -eq 0 ]; then ok "$label: verify ${#files[@]}/${#files[@]} files $1"; else
      fail "$label: verify $1: ${#bad[@]} of ${#files[@]} files"
      printf '    %s\n' "${bad[@]}"
    fi
  }
  # same_runs WHAT: output and exit status as before embedding
  same_runs() {
    [ "$run" = run ] || return 0
    record_runs "$t" "$t/run.now" "${runner[@]}"
    if cmp -s "$t/run.orig" "$t/run.now"; then ok "$label: same output and status $1"; else
      fail "$label: output or status changed $1"
      diff "$t/run.orig" "$t/run.now" | head -10 | sed 's/^/    /'
    fi
  }

  # 2. verify, 3. runs
  verify_all "after embed"
  same_runs "after embed"

  # 4. show: a current note in each file that wants one, none elsewhere
  bad=()
  for f in "${files[@]}"; do
    [[ $refused_paths == *" $f "* ]] && continue
    has_needed "$f" || continue
    st=$(show_state "$f")
    if wants_note "$f"; then
      [ "$st" = "true true" ] || bad+=("${f#"$t"/}: note/current = $st")
    else
      [ "${st%% *}" = false ] || bad+=("${f#"$t"/}: unexpected note ($st)")
    fi
  done
  if [ ${#bad[@]} -eq 0 ]; then ok "$label: show: current note in $expected files, none elsewhere"; else
    fail "$label: show"
    printf '    %s\n' "${bad[@]}"
  fi
  # the program's note: libgreet.so (DT_NEEDED) and libplugin.so (FDO dlopen note)
  if [[ " ${noted[*]} " == *" $t/bin/greet "* ]]; then
    local tag=rpath
    readelf -dW "$t/bin/greet" | grep -q '(RUNPATH)' && tag=runpath
    if out=$("$LDCACHE" show --json "$t/bin/greet" | "$PY" -c 'import json,sys
d = json.load(sys.stdin)
got = {e["soname"]: e["paths"] for e in d["entries"]}
want = {"libgreet.so": ["=" + sys.argv[1] + "/libgreet.so"], "libplugin.so": ["=" + sys.argv[2] + "/libplugin.so"]}
if got != want: sys.exit("entries %r" % got)
if d["fingerprint"]["tag"] != sys.argv[3]: sys.exit("fingerprint tag %r, not %r" % (d["fingerprint"]["tag"], sys.argv[3]))' \
      "$LIBGREET_DIR" "$PLUGIN_DIR" "$tag" 2>&1); then
      ok "$label: program note names libgreet.so and the dlopen-noted libplugin.so, fingerprint of DT_${tag^^}"
    else
      fail "$label: program note entries: $out"
    fi
  fi

  # 5. readelf -lW: a PT_NOTE covers the note, inside a read-only PT_LOAD
  bad=()
  for f in "${noted[@]}"; do
    out=$("$PY" "$CHECK_PY" notecover "$f" 2>&1) || bad+=("${f#"$t"/}: $out")
  done
  if [ ${#bad[@]} -eq 0 ]; then ok "$label: readelf -lW: PT_NOTE covers the note in a read-only PT_LOAD ($expected files)"; else
    fail "$label: note placement"
    printf '    %s\n' "${bad[@]}"
  fi

  # 6. eu-elflint: no message the original did not have (but the unknown NixOS note types)
  bad=()
  for f in "${files[@]}"; do
    out=$("$PY" "$CHECK_PY" elflint "$(copy_of "$t" orig "$f")" "$f" 2>&1) || bad+=("${f#"$t"/}: $out")
  done
  if [ ${#bad[@]} -eq 0 ]; then ok "$label: eu-elflint --gnu-ld: no new message (${#files[@]} files)"; else
    fail "$label: eu-elflint: new messages"
    printf '    %s\n' "${bad[@]}"
  fi

  # 7. static and static-pie programs: skipped and untouched
  if [ -f "$t/bin/greet" ] && ! has_needed "$t/bin/greet" && [[ $refused_paths != *" $t/bin/greet "* ]]; then
    local why
    why=$("$PY" -c 'import json,sys; print(",".join(k for k in json.load(open(sys.argv[1]))["skipped_reasons"] if "static" in k))' "$t/embed1.json")
    if [ -n "$why" ] && cmp -s "$t/bin/greet" "$(copy_of "$t" orig "$t/bin/greet")"; then
      ok "$label: static program skipped ($why), byte-identical"
    else
      fail "$label: static program changed or not reported as skipped"
    fi
  fi

  # 8. a second embed changes nothing
  if "$LDCACHE" embed --json --store-dir "$t/store" "$t/store" "$t/bin" >"$t/embed2.json" 2>"$t/embed2.err"; then
    local pairs=()
    for f in "${files[@]}"; do pairs+=("$(copy_of "$t" embedded "$f")" "$f"); done
    if [ "$(json_field "$t/embed2.json" cached)" = 0 ] && out=$(files_identical "${pairs[@]}"); then
      ok "$label: second embed: cached 0, unchanged $(json_field "$t/embed2.json" unchanged), no byte changed"
    else
      fail "$label: second embed: cached $(json_field "$t/embed2.json" cached) ${out:-}"
    fi
  else
    fail "$label: second embed exited non-zero"
  fi

  # 9. strip: verify again, no note left, same runs
  if out=$("$LDCACHE" strip "$t/store" "$t/bin" 2>&1); then
    bad=()
    local same=0
    for f in "${files[@]}"; do
      cmp -s "$(copy_of "$t" orig "$f")" "$f" && same=$((same + 1))
      [[ $refused_paths == *" $f "* ]] && continue
      if has_needed "$f"; then
        st=$(show_state "$f")
        [ "${st%% *}" = false ] || bad+=("${f#"$t"/}: note left (note/current: $st)")
      fi
    done
    if [ ${#bad[@]} -eq 0 ]; then ok "$label: strip: no note left ($same/${#files[@]} files byte-identical to the original)"; else
      fail "$label: strip"
      printf '    %s\n' "${bad[@]}"
    fi
    verify_all "after strip"
    same_runs "after strip"
  else
    fail "$label: strip exited non-zero"
    printf '%s\n' "$out" | head -5 | sed 's/^/    /'
  fi

  # 10. embed again after strip: the same checks of the result, against the original
  if "$LDCACHE" embed --json --store-dir "$t/store" "$t/store" "$t/bin" >"$t/embed3.json" 2>"$t/embed3.err" &&
    [ "$(json_field "$t/embed3.json" cached)" = "$expected" ]; then
    ok "$label: embed after strip: cached $expected"
  else
    fail "$label: embed after strip: cached $(json_field "$t/embed3.json" cached 2>/dev/null || echo '?'), expected $expected"
  fi
  verify_all "after strip and embed"
  same_runs "after strip and embed"
  return 0
}
