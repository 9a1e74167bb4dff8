#!/usr/bin/env bash
# Real-world stat-storm benchmark: a Nix-like store made of a Debian package's whole library
# closure, and five ways of loading the same program from it, measured side by side.
#
# Usage: bench/storm/run.sh PACKAGE [VAR=VALUE]... COMMAND [ARG]...
#   e.g. bench/storm/run.sh imagemagick convert --version
#        bench/storm/run.sh emacs-nox emacs \
#          --dump-file=@emacs-nox@/usr/libexec/emacs/28.2/x86_64-linux-gnu/emacs.pdmp --version
# COMMAND is looked up in the store (store.py command: usr/bin/COMMAND, else the one
# COMMAND-*/COMMAND.* a Debian alternative points at). In ARGs and VALUEs, @PKG@ stands for
# the store directory of package PKG in the scenario being run (programs whose data files
# live at their Debian paths need them named); VAR=VALUE words set the program's environment.
#
# The store (cached under $LDCACHE_CACHE_DIR/storm/base/<key>, the .debs under storm/debs):
# the closure (Depends + Pre-Depends; closure.py) minus libc6, each package unpacked into
# store/<hash>-<name>, every dynamically linked ELF file given a DT_RUNPATH (its package's lib
# dirs, then its dependencies' in BFS order, then the glibc store directory, as Nix's linker
# wrapper does) and a PT_INTERP in the glibc store directory. Two RUNPATH variants: "full" and
# "shrink" (the same after `patchelf --shrink-rpath`, as nixpkgs' fixup does).
#
# Scenarios, each its own copy of the store ($work/fN/store for the full RUNPATHs, $work/sN/store
# for the shrunk ones: equal lengths, so equal RUNPATHs):
#   1 stock: pristine glibc loader and libc (2.43 unless LDCACHE_GLIBC says otherwise)
#   2 ldcache: patched loader and libc, notes by `ldcache embed --store-dir S S`
#   3 patchelf: patched loader and libc, notes by patchelf 0.19.3 --build-resolution-cache
#   4 shrinkwrap: pristine glibc, every DT_NEEDED replaced by the absolute path it resolves to
#   5 floor: pristine glibc, no RUNPATH, every library in one directory found via ld.so.cache
#
# Start-up times: one block of rounds, each running all ten configurations (five scenarios, two
# RUNPATH variants) once in a shuffled order, 20 rounds per placement of the files in physical
# memory (page cache dropped and read back; timing.py); goals judged on medians with bootstrap
# confidence intervals over placements (stats.py), more placements while one is within noise.
# Loader instructions: callgrind, once per configuration (deterministic).
#
# Writes bench/results/storm-<PACKAGE>.md (also printed). Environment: LDCACHE_CACHE_DIR
# (default /var/cache/ldcache), LDCACHE_STORM_RUNS (rounds at least, default 100),
# LDCACHE_STORM_MAX_RUNS (rounds at most, default 5 times that), LDCACHE_KEEP=1 keeps the work
# directory, LDCACHE_GLIBC the glibc version (default 2.43, the version of the results in
# bench/results), LDCACHE_GLIBC_DEV=1 takes the patched glibc from `build-glibc.sh --dev` (the
# loader patch being worked on, rebuilt incrementally). Run as root (apt-get, ld.so.cache,
# setuid bits).
set -euo pipefail
unset LD_LIBRARY_PATH LD_PRELOAD LD_DEBUG LD_LDCACHE_DISABLE

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
cache=${LDCACHE_CACHE_DIR:-/var/cache/ldcache}
storm=$cache/storm
runs=${LDCACHE_STORM_RUNS:-100}
max_runs=${LDCACHE_STORM_MAX_RUNS:-$((5 * runs))}
# Rounds timed on one placement of the files in memory (timing.py): the spread between
# placements, not between runs, is what needs many samples.
rounds_per_placement=20
glibc_version=${LDCACHE_GLIBC:-2.43}
scenarios=(1 2 3 4 5)
variants=(full shrink)
# Bump when the layout changes in a way the hashed scripts do not show.
layout_version=1

log () { printf 'storm: %s\n' "$*" >&2; }
die () { log "error: $*"; exit 1; }
# shellcheck source=../../tests/lib.sh
source "$repo/tests/lib.sh"
# No __pycache__ beside the scripts.
py () { PYTHONDONTWRITEBYTECODE=1 /usr/bin/python3 "$here/$1" "${@:2}"; }

usage () {
  sed -n '5,13p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

# ---------------------------------------------------------------------------------------------
# Inputs and tools

# parse_arguments PACKAGE [VAR=VALUE]... COMMAND [ARG]...: sets package, app_env, command, args.
parse_arguments () {
  (($# >= 2)) || usage
  package=$1
  shift
  app_env=()
  while (($#)) && [[ $1 =~ ^[A-Za-z_][A-Za-z0-9_]*= ]]; do
    app_env+=("$1")
    shift
  done
  (($#)) || usage
  command=$1
  args=("${@:2}")
}

setup_tools () {
  [[ $(id -u) == 0 ]] || die "run as root (apt-get, ldconfig)"
  ensure_packages strace valgrind python3 python3-venv dpkg apt util-linux coreutils
  local key value
  while IFS='=' read -r key value; do
    printf -v "$key" %s "$value"
  done < <(bash "$repo/tests/e2e/build-glibc.sh" ${LDCACHE_GLIBC_DEV:+--dev} "$glibc_version")
  [[ -x ${PRISTINE_LDSO-} && -x ${PATCHED_LDSO-} ]] || die "tests/e2e/build-glibc.sh failed"
  patchelf=$(patchelf_bin)
  # A private copy: another build in this checkout may replace target/release/ldcache meanwhile.
  local built=${CARGO_TARGET_DIR:-$repo/target}/release/ldcache
  [[ $built == /* ]] || built=$repo/$built
  (cd "$repo" && nice cargo build --release --locked -q --bin ldcache)
  cp "$built" "$work/ldcache"
  ldcache=$work/ldcache
}

# ---------------------------------------------------------------------------------------------
# Closure, .debs, base store

fetch_debs () {
  mkdir -p "$storm/debs"
  local missing
  mapfile -t missing < <(/usr/bin/python3 - "$work/closure.json" "$storm/debs" <<'EOF'
import json, os, sys
closure = json.load(open(sys.argv[1]))
for name, p in closure["packages"].items():
    if not os.path.exists(os.path.join(sys.argv[2], p["deb"])):
        print(f"{name}={p['version']}")
EOF
  )
  ((${#missing[@]})) || return 0
  log "downloading ${#missing[@]} packages into $storm/debs"
  ( cd "$storm/debs" &&
    { apt-get download -q=2 "${missing[@]}" 2> /dev/null ||
      { apt-get update -qq && apt-get download -q=2 "${missing[@]}"; }; } )
}

# Print the key of the base store: its inputs (the .debs, the scripts that lay it out, patchelf).
base_key () {
  {
    echo "layout $layout_version $GLIBC_STORE_NAME"
    "$patchelf" --version
    cat "$here/store.py" "$here/elfinfo.py" "$repo/tests/corpus/corpus.py"
    /usr/bin/python3 -c 'import json, sys
closure = json.load(open(sys.argv[1]))
print(closure["root"])
for name, p in sorted(closure["packages"].items()):
    print(name, p["deb"], *p["deps"])' "$work/closure.json"
  } | sha256sum | cut -c1-16
}

# Lay out the base store at $work/s0/store (the placeholder prefix) and move it into the cache.
build_base () {
  local dir=$1
  log "laying out the store of ${package} (patchelf --set-rpath, --shrink-rpath)"
  py store.py layout "$work/closure.json" "$storm/debs" "$work/s0/store" "$work/s0/shrink" \
    "$work/s0/manifest.json" "$patchelf" "$PRISTINE_LIBDIR"
  rm -rf "$dir"
  mkdir -p "$dir"
  mv "$work/s0/store" "$work/s0/shrink" "$work/s0/manifest.json" "$dir/"
  touch "$dir/ready"
}

prepare_base () {
  log "resolving the closure of $package"
  py closure.py "$package" --exclude libc6 > "$work/closure.json"
  mkdir -p "$storm"
  exec 8> "$storm/lock"
  flock 8
  fetch_debs
  base=$storm/base/$package-$(base_key)
  if [[ ! -f $base/ready ]]; then
    build_base "$base"
    # Older layouts of this package's closure are of no further use.
    find "$storm/base" -mindepth 1 -maxdepth 1 -name "$package-????????????????" \
      ! -path "$base" -exec rm -rf {} +
  fi
  flock -u 8
  manifest=$base/manifest.json
  exe_rel=$(py store.py command "$manifest" "$base/store" "$command")
  declare -gA pkgdir=()
  local name dir
  while read -r name dir; do pkgdir[$name]=$dir; done < <(py store.py dirs "$manifest")
  log "base store: $base; executable: $exe_rel"
}

# ---------------------------------------------------------------------------------------------
# Scenario stores

# Scenario N of the RUNPATH variant in $variant (the caller's): s1..s5 for the shrunk RUNPATHs,
# f1..f5 for the full ones.
scenario_dir () { echo "$work/${variant:0:1}$1"; }
store_of () { echo "$(scenario_dir "$1")/store"; }
loader_of () { echo "$(store_of "$1")/$(py store.py glibc-dir)/ld-linux-x86-64.so.2"; }

# record VARIANT SCENARIO KEY JSON: one line of results.jsonl, which report.py reads (null when
# the measurement printed nothing: it failed, and said why on stderr).
record () {
  printf '{"variant": "%s", "scenario": "%s", "key": "%s", "value": %s}\n' "$1" "$2" "$3" \
    "${4:-null}" >> "$work/results.jsonl"
}

# timed VARIANT SCENARIO KEY COMMAND...: run COMMAND (output in $work/KEY-VARIANT-sSCENARIO.log),
# record its wall time in seconds.
timed () {
  local variant=$1 scenario=$2 key=$3 start status=0
  shift 3
  start=$EPOCHREALTIME
  "$@" > "$work/$key-$variant-s$scenario.log" 2>&1 || status=$?
  record "$variant" "$scenario" "$key" \
    "{\"seconds\": $(awk "BEGIN { print $EPOCHREALTIME - $start }"), \"status\": $status}"
}

# As a Nix setup hook would batch it: 64 files per patchelf call, one call per core. The list of
# dynamically linked ELF files is made beforehand and not timed: patchelf gives up on the rest of
# a batch at the first file it cannot take ("wrong ELF type" for relocatable objects), which a
# hook would have to avoid somehow; this way every file patchelf can take gets its note.
patchelf_hook () {
  xargs -0 -r -P"$(nproc)" -n64 "$patchelf" --build-resolution-cache < "$1"
}

# list_dynamic_files STORE OUT: the list patchelf_hook takes (timed on its own).
list_dynamic_files () { py store.py dynamic-files "$1" > "$2"; }

build_scenario () {
  local variant=$1 n=$2 store dir
  store=$(store_of "$n")
  dir=$(scenario_dir "$n")
  rm -rf "$dir"
  mkdir -p "$dir"
  case $n in
    1|4) py store.py instantiate "$manifest" "$base" "$variant" "$store" "$PRISTINE_LIBDIR" ;;
    2|3) py store.py instantiate "$manifest" "$base" "$variant" "$store" "$PATCHED_LIBDIR" ;;
    5)
      # The stock loader reads the ld.so.cache named at build time, inside the shared glibc
      # install: this scenario's loader is a copy with that string replaced by the path of its
      # own cache (not longer, NUL-padded), so the shared install is never written.
      py scenarios.py patch-loader "$PRISTINE_LDSO" "$dir/ld.so" \
        "$(dirname "$PRISTINE_LIBDIR")/etc/ld.so.cache" "$dir/ld.so.cache"
      py store.py instantiate "$manifest" "$base" "$variant" "$store" "$PRISTINE_LIBDIR" \
        --loader "$dir/ld.so" ;;
  esac
  case $n in
    2) timed "$variant" 2 embed "$ldcache" embed --json --store-dir "$store" "$store" ;;
    3) timed "$variant" 3 list list_dynamic_files "$store" "$dir/dynamic-files"
       timed "$variant" 3 embed patchelf_hook "$dir/dynamic-files" ;;
    4) py scenarios.py shrinkwrap "$manifest" "$store" "$patchelf" ;;
    5) py scenarios.py flatten "$manifest" "$store" "$patchelf" \
         "$(dirname "$PRISTINE_LIBDIR")/sbin/ldconfig" "$dir/ld.so.cache" ;;
  esac
}

# ---------------------------------------------------------------------------------------------
# Running the program

# app_argv N: scenario N's command line in the array app_argv, its environment in app_envv.
app_argv () {
  local store word
  store=$(store_of "$1")
  app_argv=("$store/$exe_rel")
  for word in "${args[@]}"; do app_argv+=("$(expand "$store" "$word")"); done
  app_envv=(PATH=/usr/bin:/bin "HOME=$work/home" LC_ALL=C TERM=dumb)
  for word in "${app_env[@]}"; do app_envv+=("$(expand "$store" "$word")"); done
}

# expand STORE WORD: WORD with every @PKG@ replaced by PKG's directory in STORE.
expand () {
  local store=$1 word=$2 name
  while [[ $word =~ @([a-z0-9][a-z0-9.+-]*)@ ]]; do
    name=${BASH_REMATCH[1]}
    [[ -n ${pkgdir[$name]-} ]] || die "@$name@: no package $name in the closure"
    word=${word//"@$name@"/"$store/${pkgdir[$name]}"}
  done
  echo "$word"
}

check_output () {
  local variant=$1 n=$2 status=0
  app_argv "$n"
  env -i "${app_envv[@]}" "${app_argv[@]}" > "$work/out/$variant-s$n.stdout" \
    2> "$work/out/$variant-s$n.stderr" < /dev/null || status=$?
  local same=false
  cmp -s "$work/out/$variant-s$n.stdout" "$work/out/full-s1.stdout" &&
    [[ $status == "$(cat "$work/out/full-s1.status" 2> /dev/null || echo "$status")" ]] && same=true
  echo "$status" > "$work/out/$variant-s$n.status"
  record "$variant" "$n" run "{\"status\": $status, \"same_as_s1\": $same}"
  [[ $same == true ]] || log "scenario $n ($variant): output or status differs from scenario 1" \
    "(status $status; see $work/out)"
}

default_dirs () { echo "$PRISTINE_LIBDIR" "$PATCHED_LIBDIR"; }

measure_traces () {
  local variant=$1 n=$2
  local dir=$work/trace/$variant-s$n store
  store=$(store_of "$n")
  rm -rf "$dir"
  mkdir -p "$dir"
  app_argv "$n"
  env -i "${app_envv[@]}" strace -ff -qq -o "$dir/all" -- "${app_argv[@]}" \
    > /dev/null 2>&1 < /dev/null || true
  # shellcheck disable=SC2046 # one word per default directory
  record "$variant" "$n" trace \
    "$(py measure.py trace "$manifest" "$store" "$dir/all" $(default_dirs))"
  # shellcheck disable=SC2054 # the commas belong to strace's -e
  env -i "${app_envv[@]}" strace -ff -qq -s 512 -E LD_DEBUG=libs -o "$dir/debug" \
    -e trace=execve,open,openat,openat2,stat,lstat,newfstatat,statx,write,writev \
    -- "${app_argv[@]}" > /dev/null 2>&1 < /dev/null || true
  # shellcheck disable=SC2046
  record "$variant" "$n" startup \
    "$(py measure.py startup "$manifest" "$store" "$dir/debug" "${app_argv[0]}" $(default_dirs))"
  [[ -n ${LDCACHE_KEEP-} ]] || rm -rf "$dir"
}

# The control behind scenario 2's mmap count: scenario 1's files (no notes) under the patched
# loader and libc, traced like the scenarios.
measure_control () {
  local variant=$1 dir=$work/trace/control
  rm -rf "$dir"
  mkdir -p "$dir"
  py store.py glibc "$(store_of 1)" "$PATCHED_LIBDIR"
  app_argv 1
  env -i "${app_envv[@]}" strace -ff -qq -o "$dir/all" -- "${app_argv[@]}" \
    > /dev/null 2>&1 < /dev/null || true
  py store.py glibc "$(store_of 1)" "$PRISTINE_LIBDIR"
  # shellcheck disable=SC2046 # one word per default directory
  record "$variant" 1 control_patched_loader \
    "$(py measure.py trace "$manifest" "$(store_of 1)" "$dir/all" $(default_dirs))"
  rm -rf "$dir"
}

predict () {
  local variant=$1 n=$2 mode=off out ok=true
  [[ $n == 2 || $n == 3 ]] && mode=notes
  record "$variant" "$n" predicted \
    "$(py measure.py predict "$ldcache" "$mode" "$(loader_of "$n")" "$(store_of "$n")" \
         "$(store_of "$n")/$exe_rel")"
  # Search by search: files tried, file kept, via, failing calls (tests/explain_compare.py).
  app_argv "$n"
  out=$(env -i "${app_envv[@]}" /usr/bin/python3 "$repo/tests/explain_compare.py" \
          --loader "$(loader_of "$n")" --store-dir "$(store_of "$n")" "$ldcache" "$mode" \
          "${app_argv[0]}" -- "${app_argv[@]}" 2>&1) || ok=false
  record "$variant" "$n" per_search \
    "$(/usr/bin/python3 -c 'import json, sys; print(json.dumps({"ok": sys.argv[1] == "true", "says": sys.argv[2]}))' "$ok" "$out")"
}

measure_sizes () {
  local variant=$1 n
  for n in 2 3; do
    record "$variant" "$n" sizes \
      "$(py measure.py sizes "$manifest" "$(store_of 1)" "$(store_of "$n")")"
    record "$variant" "$n" audit "$(py measure.py audit "$ldcache" "$(store_of "$n")")"
  done
  record "$variant" 2 verify "$(py measure.py verify "$ldcache" "$manifest" "$(store_of 1)" \
                                  "$(store_of 2)" "$work/verify.tmp")"
}

# measure_instructions VARIANT N: the loader's instructions in scenario N (callgrind, user space,
# deterministic): start-up (`_dl_start`, everything before the first initialiser), dependency
# mapping (`_dl_map_object_deps`), and the whole run.
measure_instructions () {
  local variant=$1 n=$2 out=$work/trace/callgrind-$1-s$2
  app_argv "$n"
  env -i "${app_envv[@]}" valgrind --tool=callgrind --callgrind-out-file="$out" \
    "${app_argv[@]}" > /dev/null 2> "$out.log" < /dev/null || true
  record "$variant" "$n" instructions "$(py measure.py instructions "$out")"
  [[ -n ${LDCACHE_KEEP-} ]] || rm -f "$out" "$out.log"
}

# Start-up times of every configuration (scenario and RUNPATH variant) in one interleaved block:
# timing.py runs rounds of all of them in a shuffled order, in placements (each configuration's
# page cache dropped and read back first), and more placements while a goal is within noise. The
# plan names each configuration's command line, environment and files.
measure_times () {
  local variant n placements=$(((runs + rounds_per_placement - 1) / rounds_per_placement))
  {
    printf '{"min_placements": %d, "max_placements": %d, "batch": %d, ' "$placements" \
      "$(((max_runs + rounds_per_placement - 1) / rounds_per_placement))" \
      "$(((placements + 1) / 2))"
    printf '"warmup": 3, "rounds_per_placement": %d, "configurations": [' \
      "$rounds_per_placement"
    local sep=
    for variant in "${variants[@]}"; do
      for n in "${scenarios[@]}"; do
        app_argv "$n"
        printf '%s{"variant": "%s", "scenario": "%s", "argv": %s, "env": %s, "files": %s}' \
          "$sep" "$variant" "$n" "$(json_array "${app_argv[@]}")" \
          "$(json_array "${app_envv[@]}")" "$(json_array "$(scenario_dir "$n")")"
        sep=", "
      done
    done
    printf ']}\n'
  } > "$work/timing-plan.json"
  log "timing ${#variants[@]} x ${#scenarios[@]} configurations, at least $runs rounds" \
    "($placements placements of $rounds_per_placement)"
  py timing.py "$work/timing-plan.json" "$work/times.json"
}

json_array () { /usr/bin/python3 -c 'import json, sys; print(json.dumps(sys.argv[1:]))' "$@"; }

run_variant () {
  local variant=$1 n
  for n in "${scenarios[@]}"; do
    log "$variant: building scenario $n"
    build_scenario "$variant" "$n"
  done
  for n in "${scenarios[@]}"; do
    check_output "$variant" "$n"
    log "$variant: tracing scenario $n"
    measure_traces "$variant" "$n"
    predict "$variant" "$n"
    measure_instructions "$variant" "$n"
  done
  measure_control "$variant"
  measure_sizes "$variant"
}

# ---------------------------------------------------------------------------------------------

write_meta () {
  local commit cpu
  commit=$(git -C "$repo" rev-parse --short HEAD 2> /dev/null || echo unknown)
  # Read-only: --no-optional-locks keeps git status from refreshing the index.
  [[ -z $(git -C "$repo" --no-optional-locks status --porcelain --untracked-files=no \
            2> /dev/null) ]] || commit+=" (with uncommitted changes)"
  cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')
  /usr/bin/python3 -c 'import json, sys
keys = sys.argv[2::2]
json.dump(dict(zip(keys, sys.argv[3::2])), open(sys.argv[1], "w"), indent=1)' "$work/meta.json" \
    package "$package" exe "$exe_rel" base "$base" commit "$commit" cpu "$cpu" nproc "$(nproc)" \
    ldcache_version "$("$ldcache" --version)" patchelf_version "$("$patchelf" --version)" \
    ldcache_sha256 "$(sha256sum < "$ldcache" | cut -d' ' -f1)" \
    load_start "$load_start" load_end "$(cut -d' ' -f1 /proc/loadavg)" \
    seconds "$((SECONDS - start_seconds))" runs "$runs" max_runs "$max_runs" \
    pristine_libdir "$PRISTINE_LIBDIR" patched_libdir "$PATCHED_LIBDIR"
}

main () {
  parse_arguments "$@"
  start_seconds=$SECONDS
  load_start=$(cut -d' ' -f1 /proc/loadavg)
  # A fixed-length name: every scenario store path has the length of the cached placeholder.
  work=$(mktemp -d /tmp/ldcache-storm.XXXXXX)
  chmod 755 "$work"
  [[ -n ${LDCACHE_KEEP-} ]] || trap 'rm -rf "$work"' EXIT
  mkdir -p "$work/home" "$work/out" "$work/trace"
  setup_tools
  GLIBC_STORE_NAME=$(py store.py glibc-dir)
  prepare_base
  local variant
  for variant in "${variants[@]}"; do run_variant "$variant"; done
  measure_times
  write_meta
  printf '%s\0' "$package" "${app_env[@]}" "$command" "${args[@]}" > "$work/command_line"
  mkdir -p "$repo/bench/results"
  py report.py "$work" "$manifest" "$repo/bench/results/storm-$package.md"
  log "done in $((SECONDS - start_seconds)) s"
  ! grep -q '"same_as_s1": false' "$work/results.jsonl" ||
    die "a scenario's output or exit status differs from scenario 1's (see the report)"
}

main "$@"
