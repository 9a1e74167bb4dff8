#!/usr/bin/env bash
# The injector on a corpus of real ELF files (about 2 900: /usr/bin, /usr/sbin,
# /usr/lib/x86_64-linux-gnu and the Debian packages of packages.txt, laid out like a Nix store
# with store-like run paths by prepare.sh, which builds the corpus once and caches it).
#
# On a fresh copy of the pristine corpus: observe (programs' --version/--help, dlopen of every
# library, eu-elflint), `ldcache embed`, check refusals, `ldcache verify` every changed file,
# `ldcache show` every note, observe again and compare, embed again (no byte may change).
# Prints one line per check and ends with "N passed, M failed"; exits non-zero on a failure.
# Differences leave repro files under $LDCACHE_CORPUS_REPRO (default /tmp/corpus-repro).
#
# Environment: LDCACHE_CACHE_DIR (default /var/cache/ldcache), LDCACHE_KEEP=1 keeps the work
# directory and the embedded store. Run as root: it installs what it needs with apt-get, and runs
# the corpus's programs and libraries as user nobody without new privileges.
set -euo pipefail
unset LD_LIBRARY_PATH LD_PRELOAD LD_DEBUG LD_LDCACHE_DISABLE

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
repro=${LDCACHE_CORPUS_REPRO:-/tmp/corpus-repro}
corpus_py=(nice /usr/bin/python3 "$here/corpus.py")
start=$SECONDS

passed=0
failed=0

log () { printf '%s\n' "$*" >&2; }
# shellcheck source=../lib.sh
source "$here/../lib.sh"
plan 15

phase_start=$SECONDS
# stamp WHAT: log how long the phase that ends here took.
stamp () {
  log "  ($1: $((SECONDS - phase_start)) s)"
  phase_start=$SECONDS
}

# check NAME DETAIL COMMAND...: run COMMAND, count and print the result.
check () {
  local name=$1 detail=$2
  shift 2
  if "$@"; then
    printf 'PASS %s%s\n' "$name" "${detail:+: $detail}"
    passed=$((passed + 1))
  else
    printf 'FAIL %s%s\n' "$name" "${detail:+: $detail}"
    failed=$((failed + 1))
  fi
}

json_get () { /usr/bin/python3 -c 'import json,sys; print(eval(sys.argv[2], {}, {"j": json.load(open(sys.argv[1]))}))' "$@"; }

ensure_packages gcc libc6-dev elfutils python3 python3-venv util-linux coreutils findutils

log "building ldcache"
(cd "$repo" && nice cargo build --release --locked -q)
ldcache=${CARGO_TARGET_DIR:-$repo/target}/release/ldcache
[[ $ldcache == /* ]] || ldcache=$repo/$ldcache

stamp "build ldcache"
root=$("$here/prepare.sh")
stamp "corpus"
pristine=$root/pristine
store=$root/store
manifest=$root/manifest.json
exec 9> "$root/lock"
flock 9

work=$(mktemp -d /tmp/ldcache-corpus.XXXXXX)
chmod 755 "$work"
cleanup () {
  if [[ ${LDCACHE_KEEP:-} == 1 || $failed != 0 ]]; then
    log "kept $work and $store"
  else
    rm -rf "$work" "$store"
  fi
}
trap cleanup EXIT

gcc -O2 -Wall -o "$work/dlopen-helper" "$here/dlopen-helper.c" -ldl
# A private copy: other builds in the same checkout may replace target/release/ldcache meanwhile.
cp "$ldcache" "$work/ldcache"
ldcache=$work/ldcache

log "copying the pristine corpus to $store"
rm -rf "$store"
cp -a "$pristine" "$store"
stamp "copy"

# Run the probes as nobody when nobody can reach the store; else (a cache under a private
# directory) as root, still with the deny list and timeouts.
probe_file=$store/$(sed -n '1s/^.\{44\}//p' "$root/pristine.sums")
if ! setpriv --reuid=65534 --regid=65534 --clear-groups \
     test -x "$work/dlopen-helper" -a -r "$manifest" -a -r "$probe_file" 2> /dev/null; then
  log "nobody cannot read $store: probes run as root"
  export LDCACHE_CORPUS_AS_ROOT=1
fi

# --- the corpus ---------------------------------------------------------------------------------
read -r n_elf n_dynamic n_packages < <(json_get "$manifest" \
  '"%d %d %d" % (len(j["files"]), sum(e["dynamic"] for e in j["files"]), len({e["package"] for e in j["files"]}))')
n_files=$(wc -l < "$root/pristine.sums")
check "corpus" "$n_files files, $n_elf ELF, $n_dynamic dynamic ELF, $n_packages store packages, $(du -sh "$pristine" | cut -f1)" \
  test "$n_dynamic" -ge 2000

# --- before ---------------------------------------------------------------------------------------
log "observing before embedding (programs, dlopen, eu-elflint)"
"${corpus_py[@]}" probe "$manifest" "$store" "$work/before.json" --dlopen-helper "$work/dlopen-helper"
"${corpus_py[@]}" probe "$manifest" "$store" "$work/before2.json" --dlopen-helper "$work/dlopen-helper" \
  --kinds programs --previous "$work/before.json"
stamp "observe before"

# --- embed ----------------------------------------------------------------------------------------
t=$SECONDS
set +e
"$ldcache" embed --json --store-dir "$store" "$store" > "$work/embed.json" 2> "$work/embed.err"
rc=$?
set -e
embed_s=$((SECONDS - t))
[[ -s $work/embed.err ]] && log "$(cat "$work/embed.err")"
cat "$work/embed.json" > "$work/embed1.json"
check "embed exits 0" "exit $rc in ${embed_s} s" test "$rc" = 0
read -r e_files e_cached e_unchanged e_skipped e_refused e_errors < <(json_get "$work/embed.json" \
  '"%d %d %d %d %d %d" % (j["files"], j["cached"], j["unchanged"], j["skipped"], len(j["refused"]), len(j["errors"]))')
echo "  embed: $e_files files, $e_cached cached, $e_unchanged unchanged, $e_skipped skipped" \
  "$(json_get "$work/embed.json" 'j["skipped_reasons"]'), $e_refused refused, $e_errors errors," \
  "$(json_get "$work/embed.json" 'j["seconds"]') s"
/usr/bin/python3 - "$work/embed.json" "$store/" <<'EOF'
import json, sys
j = json.load(open(sys.argv[1]))
for kind in ("refused", "errors"):
    for r in j[kind]:
        print(f"  {kind}: {r['path'].replace(sys.argv[2], '')}: {r['reason']}")
EOF
# Refusals by reason, each within its bound (refusals.py; the injector's own check: none).
PYTHONPATH=$here /usr/bin/python3 - "$work/embed.json" "$n_dynamic" > "$work/refusals.out" <<'EOF' &&
import json, sys
from refusals import judge
ok, lines = judge([r["reason"] for r in json.load(open(sys.argv[1]))["refused"]], int(sys.argv[2]))
print("\n".join(lines))
sys.exit(0 if ok else 1)
EOF
  within=yes || within=no
sed 's/^/  refusals: /' "$work/refusals.out"
check "refusals within their bounds per reason, and at most 1 % in all" "$e_refused of $n_dynamic" \
  test "$within" = yes
check "no read or write errors" "$e_errors" test "$e_errors" = 0

# --- what changed ---------------------------------------------------------------------------------
sums () { (cd "$1" && find . -type f -print0 | sort -z | nice xargs -0 -P2 -n 256 sha1sum) | sort -k2; }
stamp "embed"
sums "$store" > "$work/after.sums"
diff <(cut -c43- "$root/pristine.sums") <(cut -c43- "$work/after.sums") > /dev/null &&
  same_files=yes || same_files=no
check "embed neither adds nor removes files" "" test "$same_files" = yes
paste <(cut -c1-40 "$root/pristine.sums") <(cut -c1-40 "$work/after.sums") <(cut -c43- "$root/pristine.sums") |
  awk -F'\t' '$1 != $2 {print substr($3, 3)}' > "$work/changed"
n_changed=$(wc -l < "$work/changed")
# Each changed inode is listed once per hard link; embed counts inodes.
n_changed_inodes=$( (cd "$store" && tr '\n' '\0' < "$work/changed" | xargs -0 -r stat -c '%i') | sort -u | wc -l)
check "changed files = cached + removed" "$n_changed paths, $n_changed_inodes inodes, $e_cached cached" \
  test "$n_changed_inodes" = "$(json_get "$work/embed.json" 'j["cached"] + j["removed"]')"
diff <(cd "$pristine" && find . -type f -printf '%n %p\n' | sort -k2) \
     <(cd "$store" && find . -type f -printf '%n %p\n' | sort -k2) > "$work/links.diff" && links=yes || links=no
check "hard links kept (link counts unchanged)" "" test "$links" = yes
diff <(cd "$pristine" && find . -printf '%m %y %p\n' | sort -k3) \
     <(cd "$store" && find . -printf '%m %y %p\n' | sort -k3) > "$work/modes.diff" && modes=yes || modes=no
check "file modes and types kept" "" test "$modes" = yes
stamp "compare trees"

# ldcache verify (the injector's oracle) and ldcache show on every changed file.
"${corpus_py[@]}" notes "$ldcache" "$pristine" "$store" "$work/changed" "$work"
stamp "verify and show"
n_verify_bad=$(grep -c . "$work/verify.out" || true)
n_show_bad=$(grep -c . "$work/show.out" || true)
if ((n_verify_bad + n_show_bad)); then
  head -20 "$work/verify.out" | sed 's/^/  verify: /'
  head -20 "$work/show.out" | sed 's/^/  show: /'
  cat "$work/verify.out" "$work/show.out" | head -40 | sed 's/: .*//' | sort -u | while read -r f; do
    d=$repro/notes/${f//\//_}
    mkdir -p "$d"
    cp -a "$pristine/$f" "$d/pristine"
    cp -a "$store/$f" "$d/embedded"
  done
  echo "  repro files under $repro/notes/"
fi
check "ldcache verify pristine embedded, every changed file" "$n_changed files, $n_verify_bad rejected" \
  test "$n_verify_bad" = 0
check "ldcache show: every note decodes and is current" "$n_show_bad of $n_changed not" \
  test "$n_show_bad" = 0

# --- after ----------------------------------------------------------------------------------------
log "observing after embedding"
"${corpus_py[@]}" probe "$manifest" "$store" "$work/after.json" --dlopen-helper "$work/dlopen-helper" \
  --kinds programs,dlopen,elflint --previous "$work/before.json"
stamp "observe after"
for kind in programs dlopen elflint; do
  set +e
  "${corpus_py[@]}" compare "$work/before.json" "$work/before2.json" "$work/after.json" "$kind" \
    "$repro" "$pristine" "$store" > "$work/compare-$kind.out"
  rc=$?
  set -e
  cat "$work/compare-$kind.out"
  case $kind in
    programs) what="programs behave the same (--version, --help: stdout and exit status)" ;;
    dlopen) what="every library loads (dlopen) as before" ;;
    elflint) what="eu-elflint --gnu-ld: no new message but the note's" ;;
  esac
  check "$what" "$(grep -o '{.*}' "$work/compare-$kind.out" | tail -1)" test "$rc" = 0
done

# --- idempotence ----------------------------------------------------------------------------------
set +e
"$ldcache" embed --json --store-dir "$store" "$store" > "$work/embed2.json" 2> "$work/embed2.err"
rc=$?
set -e
sums "$store" > "$work/after2.sums"
cmp -s "$work/after.sums" "$work/after2.sums" && same=yes || same=no
if [[ $same == no ]]; then
  diff "$work/after.sums" "$work/after2.sums" | head -10 | sed 's/^/  /'
fi
check "a second embed changes no byte" "exit $rc" test "$same" = yes -a "$rc" = 0
c2=$(json_get "$work/embed2.json" 'j["cached"]')
stamp "second embed"
check "a second embed reports cached: 0" "cached $c2, unchanged $(json_get "$work/embed2.json" 'j["unchanged"]')" \
  test "$c2" = 0

# --- audit (information, LDCACHE_CORPUS_AUDIT=1: about 2 minutes) ---------------------------------
if [[ ${LDCACHE_CORPUS_AUDIT:-} == 1 ]] &&
   "$ldcache" audit --json --store-dir "$store" "$store" > "$work/audit.json" 2> "$work/audit.err"; then
  echo "  audit, failing lookups summed over all files: $(json_get "$work/audit.json" 'j["total"]')"
  stamp "audit"
fi

log "run time $((SECONDS - start)) s"
summary
