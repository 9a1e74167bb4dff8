#!/usr/bin/env bash
# `ldcache embed` never damages a file. On a small store of gcc-built programs and libraries that
# carry what a file can carry (a hard link, a read-only mode, set-user-ID and set-group-ID bits, a
# file capability, user extended attributes and an ACL), every check ends with tests/safety/judge.py:
# each file is its original, byte for byte, or a complete new version that `ldcache verify`
# accepts and whose note `ldcache show` finds current, with its owner, mode and extended attributes.
#
# - kills: embed is killed (SIGKILL, through strace's fault injection) on entering each of its
#   write-like system calls in turn, every occurrence of each;
# - errors: each of those calls fails in turn with ENOSPC, EDQUOT and EIO: embed exits 1;
# - a full file system: the same store on a tmpfs too small for the new versions;
# - races: a symbolic link swapped in for a file, and a truncation, while embed waits inside a
#   system call; two embeds at once on one store;
# - metadata: root and a user who is not root (who may not set a capability: refused).
# As root (capabilities, other users, tmpfs). Prints one line per check, ends with "N passed, M
# failed".
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=tests/lib.sh
source tests/lib.sh

cache=${LDCACHE_CACHE_DIR:-/var/cache/ldcache}
log() { echo "safety: $*" >&2; }
[ "$(id -u)" -eq 0 ] || { echo "tests/safety/run.sh: run as root" >&2; exit 1; }
ensure_packages strace attr acl libcap2-bin
cargo build --release --locked --quiet --bin ldcache
ldcache=$PWD/target/release/ldcache

work=$(mktemp -d)
mounted=
cleanup() {
    [ -z "$mounted" ] || umount "$mounted"
    rm -rf "$work"
}
trap cleanup EXIT
chmod 755 "$work"
passed=0
failed=0
plan 17

# make_store DIR: the fixture, under DIR/store.
make_store() {
    local s=$1/store src=$1/src
    mkdir -p "$s"/{a-base/lib,b-mid/lib,c-app/bin,x-empty/lib} "$src"
    echo 'int base(void) { return 1; }' >"$src/base.c"
    echo 'int base(void); int mid(void) { return base() + 1; }' >"$src/mid.c"
    echo 'int mid(void); int main(void) { return mid() == 2 ? 0 : 1; }' >"$src/app.c"
    gcc -shared -fPIC -o "$s/a-base/lib/libbase.so" "$src/base.c"
    gcc -shared -fPIC -o "$s/b-mid/lib/libmid.so" "$src/mid.c" -L"$s/a-base/lib" -lbase \
        -Wl,--enable-new-dtags,-rpath,"$s/x-empty/lib:$s/a-base/lib"
    gcc -o "$s/c-app/bin/app" "$src/app.c" -L"$s/b-mid/lib" -lmid \
        -Wl,--enable-new-dtags,-rpath,"$s/x-empty/lib:$s/b-mid/lib:$s/a-base/lib"
    rm -r "$src"
    local bin=$s/c-app/bin
    ln "$bin/app" "$bin/app-link"
    for variant in ro suid sgid cap attr; do cp "$bin/app" "$bin/app-$variant"; done
    chmod 555 "$bin/app-ro"
    chmod 4755 "$bin/app-suid"
    chgrp daemon "$bin/app-sgid" && chmod 2755 "$bin/app-sgid"
    setcap cap_net_raw+ep "$bin/app-cap"
    setfattr -n user.origin -v fixture "$bin/app-attr"
    setfacl -m u:nobody:rx "$bin/app-attr"
    echo 'not ELF' >"$s/c-app/README"
}

# fresh DIR: DIR/store as the pristine store was (same path: the RUNPATHs are absolute).
fresh() {
    rm -rf "$1/store"
    cp -a "$pristine" "$1/store"
}

judge() { python3 tests/safety/judge.py "$ldcache" "$pristine" "$1"; }

# shows PATTERN [--json] FILE: `ldcache show` prints PATTERN for FILE (no pipe: grep -q may close it
# before show has written).
shows() {
    "$ldcache" show "${@:2}" >"$work/show.out" && grep -q -- "$1" "$work/show.out"
}

make_store "$work/build"
pristine=$work/pristine
mv "$work/build/store" "$pristine"
store=$work/build/store
embed=("$ldcache" embed --jobs 1 --store-dir "$store" "$store")

# The control: a full run rewrites the files that take notes, keeps everything else.
full_run() {
    fresh "$work/build" && "${embed[@]}" 2>"$work/err" && judge "$store" >"$work/judge" &&
        grep -q '^[0-9]* original, 8 new' "$work/judge" && "$store/c-app/bin/app" &&
        "$store/c-app/bin/app-suid" ||
        { cat "$work/err" "$work/judge"; return 1; }
}
check "a full run: 8 new versions, metadata kept, programs run" full_run

# Each occurrence of a write-like system call in a full run, from the first that names the store
# on (what comes before is the loader's and the runtime's start-up): lines "CALL N", N counting
# that call's occurrences from the start.
calls=openat,copy_file_range,pwrite64,ftruncate,fchown,fsetxattr,fremovexattr,fchmod,linkat,renameat2,renameat,unlinkat
fresh "$work/build"
strace -f -qq -e trace="$calls" -o "$work/trace" "${embed[@]}" 2>/dev/null
declare -A seen=()
ours=()
started=
while read -r _ call; do
    [[ $call == "<..."* ]] && continue
    name=${call%%(*}
    seen[$name]=$((${seen[$name]:-0} + 1))
    [[ -n $started || $call == *"$store"* ]] || continue
    started=yes
    ours+=("$name ${seen[$name]}")
done <"$work/trace"
log "${#ours[@]} write-like calls in a full run"

# inject_each WHAT STATUS...: embed with strace's fault injection WHAT at each of those calls in
# turn; each run must exit with one of STATUS (137: killed) and leave every file judged good.
inject_each() {
    local what=$1 name n runs=0 bad=0 got
    shift
    for occurrence in "${ours[@]}"; do
        read -r name n <<<"$occurrence"
        fresh "$work/build"
        got=0
        strace -f -qq -o /dev/null -e trace="$name" -e inject="$name:$what:when=$n" \
            "${embed[@]}" >/dev/null 2>&1 || got=$?
        runs=$((runs + 1))
        if [[ " $* " != *" $got "* ]] || ! judge "$store" >"$work/judge"; then
            echo "  $name #$n: exit $got"
            cat "$work/judge"
            bad=$((bad + 1))
        fi
    done
    echo "  $runs runs, $bad bad"
    [ "$runs" -gt 50 ] && [ "$bad" -eq 0 ]
}
check "killed (SIGKILL) on entering each write-like call of a run, in turn" \
    inject_each signal=SIGKILL 137
# A failed write fails the run (1); a failure that only costs the file its note is a refusal (0).
for errno in ENOSPC EDQUOT EIO; do
    check "each write-like call failing with $errno in turn: exit 1 (or 0: refused), nothing damaged" \
        inject_each "error=$errno" 0 1
done

# The judge itself: a file whose contents are the new version's but whose ELF header is still the
# original's (what an interrupted in-place write left) is neither.
judge_control() {
    local app=$store/c-app/bin/app-ro
    fresh "$work/build" && "${embed[@]}" 2>/dev/null &&
        dd if="$pristine/c-app/bin/app-ro" of="$app" bs=64 count=1 conv=notrunc status=none &&
        ! judge "$store" >"$work/judge" && grep -q 'app-ro: neither' "$work/judge"
}
check "control: the judge rejects the new contents under the original's ELF header" judge_control

# A real full file system: a tmpfs with room for the store and two of its largest files beside it.
full_disk() {
    local mnt=$work/small size
    size=$(( $(du -sb "$pristine" | cut -f1) + 2 * $(find "$pristine" -type f -printf '%s\n' | sort -n | tail -1) ))
    mkdir -p "$mnt" && mount -t tmpfs -o "size=$size,mode=755" tmpfs "$mnt" && mounted=$mnt &&
        cp -a "$pristine" "$mnt/store" &&
        # Fill it up to a few pages short of one new version.
        fallocate -l $(( $(df -B1 --output=avail "$mnt" | tail -1) - 8192 )) "$mnt/filler" || return 1
    local status=0
    "$ldcache" embed --jobs 1 --store-dir "$store" "$mnt/store" 2>"$work/err" || status=$?
    grep -q 'No space left on device' "$work/err" && [ "$status" -eq 1 ] &&
        rm "$mnt/filler" && python3 tests/safety/judge.py "$ldcache" "$pristine" "$mnt/store" ||
        { cat "$work/err"; return 1; }
    umount "$mnt" && mounted=
}
check "a full tmpfs: exit 1 naming ENOSPC, every file original (or new), metadata kept" full_disk

# Random moments: a store of 300 programs, embed (two threads) killed after a random delay,
# 20 times; then once more without a kill, which must finish the job.
wide=$work/wide
make_wide() {
    rm -rf "$wide" && cp -a "$pristine" "$wide" && local i &&
        for ((i = 0; i < 300; i++)); do cp -a "$pristine/c-app/bin/app-attr" "$wide/c-app/bin/w$i"; done
}
random_kills() {
    local round ms delay status bad=0 killed=0 start full
    # A whole run's time, in milliseconds: the kills fall inside it.
    rm -rf "$store" && cp -a "$wide" "$store"
    start=$(date +%s%N)
    "$ldcache" embed --jobs 2 --store-dir "$store" "$store" 2>/dev/null
    full=$(( ($(date +%s%N) - start) / 1000000 ))
    for ((round = 0; round < 20; round++)); do
        rm -rf "$store" && cp -a "$wide" "$store"
        ms=$((1 + RANDOM % (full > 2 ? full - 1 : 1)))
        delay=$(printf '%d.%03d' $((ms / 1000)) $((ms % 1000)))
        status=0
        timeout --foreground -s KILL "$delay" "$ldcache" embed --jobs 2 --store-dir "$store" "$store" \
            >/dev/null 2>&1 || status=$?
        [ "$status" -ne 137 ] || killed=$((killed + 1))
        python3 tests/safety/judge.py "$ldcache" "$wide" "$store" >"$work/judge" ||
            { echo "  round $round (killed after $delay s):"; cat "$work/judge"; bad=$((bad + 1)); }
    done
    echo "  20 rounds within a run's $full ms, $killed killed mid-run, $bad bad"
    "$ldcache" embed --store-dir "$store" "$store" 2>/dev/null &&
        python3 tests/safety/judge.py "$ldcache" "$wide" "$store" >"$work/judge" &&
        grep -q '^[0-9]* original, 308 new' "$work/judge" || { cat "$work/judge"; return 1; }
    [ "$bad" -eq 0 ] && [ "$killed" -ge 10 ]
}
make_wide
check "killed at random moments over 300 files: nothing damaged; a later run finishes" random_kills

# Races, on one file given as the path, while embed waits in a system call (strace's delay).
# delayed CALL N: runs embed on app-ro with the Nth CALL delayed by a second (on entry), in the
# background; waits until it is inside that call.
race_file=$store/c-app/bin/app-ro
delayed() {
    fresh "$work/build"
    strace -f -qq -o "$work/race.trace" -e trace="$1" -e inject="$1:delay_enter=1000000:when=$2" \
        "$ldcache" embed --json --jobs 1 --store-dir "$store" "$race_file" >"$work/race.json" 2>&1 &
    race=$!
    local i
    for ((i = 0; i < 100; i++)); do
        [ "$(grep -c "^[0-9]* *$1(" "$work/race.trace" 2>/dev/null)" -ge "$2" ] && return
        sleep 0.05
    done
    return 1
}
# The Nth occurrence of CALL in a run on app-ro whose line contains TEXT.
occurrence_of() {
    fresh "$work/build"
    strace -f -qq -o "$work/occ.trace" -e trace="$1" "$ldcache" embed --jobs 1 --store-dir "$store" "$race_file" 2>/dev/null
    grep -n "$2" "$work/occ.trace" | head -1 | cut -d: -f1
}

swap_symlink() {
    local outside=$work/outside victim n
    n=$(occurrence_of renameat2 RENAME_EXCHANGE) && [ -n "$n" ] || return 1
    delayed renameat2 "$n" || return 1
    mkdir -p "$outside" && cp -a "$pristine/c-app/bin/app-ro" "$outside/victim" && victim=$(sha256sum <"$outside/victim") &&
        mv "$race_file" "$race_file.moved" && ln -s "$outside/victim" "$race_file" &&
        wait "$race" && cat "$work/race.json" &&
        [ -L "$race_file" ] && [ "$(sha256sum <"$outside/victim")" = "$victim" ] &&
        [ "$(stat -c %a "$outside/victim")" = 555 ] &&
        cmp "$race_file.moved" "$pristine/c-app/bin/app-ro" &&
        grep -q 'another file took its name' "$work/race.json" &&
        [ -z "$(find "$store" -name '.ldcache-*')" ]
}
check "a symbolic link swapped in before the exchange: refused, link and target untouched" swap_symlink

truncate_during_copy() {
    delayed copy_file_range 1 &&
        truncate -s 100 "$race_file" && wait "$race" && cat "$work/race.json" &&
        grep -q 'its size changed' "$work/race.json" && [ "$(stat -c %s "$race_file")" = 100 ] &&
        [ -z "$(find "$store" -name '.ldcache-*')" ]
}
check "a truncation while the new version is copied: refused, file left as truncated" truncate_during_copy

# Truncated while mapped and being read: the reads past the new end would raise SIGBUS.
truncate_while_mapped() {
    local n
    n=$(occurrence_of mmap MAP_SHARED) && [ -n "$n" ] || return 1
    fresh "$work/build"
    strace -f -qq -o "$work/race.trace" -e trace=mmap -e inject="mmap:delay_exit=1000000:when=$n" \
        "$ldcache" embed --json --jobs 1 --store-dir "$store" "$race_file" >"$work/race.json" 2>&1 &
    race=$!
    sleep 0.5
    truncate -s 100 "$race_file" && local status=0 && { wait "$race" || status=$?; } &&
        cat "$work/race.json" && [ "$status" -eq 0 ] && grep -q "its size changed" "$work/race.json" &&
        grep -q '"reason"' "$work/race.json" && [ "$(stat -c %s "$race_file")" = 100 ]
}
check "a truncation while the file is mapped and parsed: refused, no SIGBUS" truncate_while_mapped

two_runs() {
    local round bad=0
    for ((round = 0; round < 10; round++)); do
        rm -rf "$store" && cp -a "$wide" "$store"
        "$ldcache" embed --jobs 2 --store-dir "$store" "$store" 2>"$work/a.err" &
        local a=$!
        "$ldcache" embed --jobs 2 --store-dir "$store" "$store" 2>"$work/b.err" ||
            { bad=$((bad + 1)); grep -v '^ldcache: [0-9]* files:' "$work/b.err" | head -3; }
        wait "$a" || { bad=$((bad + 1)); grep -v '^ldcache: [0-9]* files:' "$work/a.err" | head -3; }
        python3 tests/safety/judge.py "$ldcache" "$wide" "$store" >"$work/judge" || bad=$((bad + 1))
    done
    echo "  10 rounds, $bad bad; last: $(tail -1 "$work/judge")"
    [ "$bad" -eq 0 ]
}
check "two embeds at once on one store (10 rounds): both succeed, nothing damaged" two_runs

# Metadata as root: the capability, ACL, set-id bits kept on new versions (the judge compares
# them too).
root_metadata() {
    local bin=$store/c-app/bin
    fresh "$work/build" && "${embed[@]}" 2>/dev/null &&
        [[ $(getcap "$bin/app-cap") == *cap_net_raw=ep* ]] &&
        [[ $(getfacl -p "$bin/app-attr" 2>/dev/null) == *$'\nuser:nobody:r-x\n'* ]] &&
        [ "$(getfattr --only-values -n user.origin "$bin/app-attr" 2>/dev/null)" = fixture ] &&
        [ "$(stat -c '%a %G' "$bin/app-suid" "$bin/app-sgid" | paste -sd' ')" = "4755 root 2755 daemon" ] &&
        [ "$("$ldcache" show --json "$bin/app-cap" | python3 -c 'import json,sys; print(json.load(sys.stdin)["current"])')" = True ]
}
check "as root: capability, ACL, user attribute, set-user-ID and set-group-ID kept on new versions" root_metadata

# As a user who is not root, on a store that user owns (but app-sgid's group, daemon, is not
# theirs): set-user-ID and set-group-ID (their own group, on app) kept; a capability cannot be set
# and a foreign group cannot be given, so those two files are refused and left as they were.
user_metadata() {
    # chown clears set-id bits and capabilities: they are set again after it.
    fresh "$work/build" && chown -R nobody:nogroup "$store" && chmod 4755 "$store/c-app/bin/app-suid" &&
        chmod 2755 "$store/c-app/bin/app" &&
        chown root "$store/c-app/bin/app-sgid" &&
        chgrp daemon "$store/c-app/bin/app-sgid" && chmod 2755 "$store/c-app/bin/app-sgid" &&
        setcap cap_net_raw+ep "$store/c-app/bin/app-cap" && rm -rf "$work/user-pristine" &&
        cp -a "$store" "$work/user-pristine" || return 1
    setpriv --reuid=nobody --regid=nogroup --clear-groups \
        "$ldcache" embed --json --jobs 1 --store-dir "$store" "$store" >"$work/user.json" || return 1
    python3 tests/safety/judge.py "$ldcache" "$work/user-pristine" "$store" >"$work/judge" &&
        python3 - "$work/user.json" <<'PY' || { cat "$work/user.json" "$work/judge"; return 1; }
import json, sys
summary = json.load(open(sys.argv[1]))
refused = {r["path"].rsplit("/", 1)[1]: r["reason"] for r in summary["refused"]}
assert set(refused) == {"app-cap", "app-sgid"}, refused
assert "security.capability" in refused["app-cap"], refused
assert summary["cached"] == 5, summary
PY
    [ "$(stat -c %a "$store/c-app/bin/app-suid" "$store/c-app/bin/app" | paste -sd' ')" = "4755 2755" ] &&
        shows '"current": true' --json "$store/c-app/bin/app-suid" &&
        shows '"current": true' --json "$store/c-app/bin/app"
}
check "as a user: set-user-ID and set-group-ID kept; a capability or a foreign group: refused, left as it was" user_metadata

# Stale notes, replaced by one run: ours after the answer changed, patchelf 0.19.3's (no
# fingerprint, its own section and load segment), and a malformed one. `show` then reads the new
# answer, the program runs, and the file is a verified rewrite of the one before.
app=$store/c-app/bin/app
# app's RUNPATH lists x-empty/lib, b-mid/lib, a-base/lib: a copy of libmid.so into x-empty/lib
# changes where app finds it.
stale_own() {
    fresh "$work/build" && "${embed[@]}" 2>/dev/null &&
        cp "$store/b-mid/lib/libmid.so" "$store/x-empty/lib/libmid.so" || return 1
    cp "$app" "$work/before"
    "$ldcache" embed --json --store-dir "$store" "$app" >"$work/stale.json" &&
        grep -q '"cached": 1' "$work/stale.json" &&
        shows "=$store/x-empty/lib/libmid.so" --json "$app" &&
        "$ldcache" verify "$work/before" "$app" && "$app" || { cat "$work/stale.json"; return 1; }
}
check "our note, stale (the answer changed): replaced by one run, show and the program follow" stale_own

other_writers() {
    local patchelf
    patchelf=$(patchelf_bin) && fresh "$work/build" && "$patchelf" --build-resolution-cache "$app" &&
        shows 'no fingerprint' "$app" &&
        cp "$store/b-mid/lib/libmid.so" "$store/x-empty/lib/libmid.so" &&
        cp "$app" "$work/before" &&
        "$ldcache" embed --json --store-dir "$store" "$app" >"$work/stale.json" &&
        grep -q '"cached": 1' "$work/stale.json" &&
        shows "=$store/x-empty/lib/libmid.so" --json "$app" &&
        shows 'computed from Runpath' "$app" &&
        [ "$(readelf -SW "$app" | grep -c nixos.ldcache)" -eq 1 ] &&
        "$ldcache" verify "$work/before" "$app" && "$app" || { cat "$work/stale.json"; return 1; }
}
check "patchelf 0.19.3's note (no fingerprint): replaced by one run, one note section left" other_writers

malformed() {
    local at
    fresh "$work/build" && "${embed[@]}" 2>/dev/null || return 1
    # Bytes that are not UTF-8 into the first entry's soname.
    at=$(readelf -SW "$app" | sed -n 's/.*\.note\.nixos\.ldcache *NOTE *[0-9a-f]* \([0-9a-f]*\) .*/\1/p')
    printf '\377\377\377\377' | dd of="$app" bs=1 seek=$((0x$at + 20)) conv=notrunc status=none &&
        shows 'malformed' "$app" && cp "$app" "$work/before" &&
        "$ldcache" embed --json --store-dir "$store" "$app" >"$work/stale.json" &&
        grep -q '"cached": 1' "$work/stale.json" && shows '"current": true' --json "$app" &&
        "$ldcache" verify "$work/before" "$app" && "$app" || { cat "$work/stale.json"; return 1; }
}
check "a malformed note: replaced by one run" malformed

summary
