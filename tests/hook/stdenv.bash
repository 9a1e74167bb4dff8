# shellcheck shell=bash
# A small stand-in for the parts of nixpkgs' stdenv setup that a fixup hook
# sees, written for these tests (no nixpkgs is available here). It keeps the
# semantics that matter for ordering and opt-outs:
#   - the builder runs with `set -eu -o pipefail` and inherit_errexit;
#   - runHook NAME first runs the implicit hook (a function NAME, or the
#     string variable NAME as the package's own code, e.g. postFixup), then
#     every entry of the array NAMEHooks (NAME without a trailing "Hook"),
#     in order; the array is expanded once, when runHook starts;
#   - fixupPhase = runHook preFixup; for each output, prefix=<its path>
#     runHook fixupOutput; runHook postFixup;
#   - with structured attrs, the attributes come from a sourced .attrs.sh
#     ($NIX_ATTRS_SH_FILE): plain variables, and `outputs` is an associative
#     array name → path whose entries are also exported as variables.
# Source it, then source the setup hooks, then call fixupPhase.

set -eu
set -o pipefail
shopt -s inherit_errexit

if [ -n "${NIX_ATTRS_SH_FILE-}" ]; then
    # shellcheck disable=SC1090
    source "$NIX_ATTRS_SH_FILE"
    __structuredAttrs=1
    for _name in "${!outputs[@]}"; do
        export "$_name=${outputs[$_name]}"
    done
    unset _name
else
    __structuredAttrs=
    : "${outputs:=out}"
fi

# The output names, space-separated.
getAllOutputNames() {
    if [ -n "$__structuredAttrs" ]; then
        echo "${!outputs[*]}"
    else
        echo "$outputs"
    fi
}

# Runs one hook entry: a function name (with arguments) or a code string.
_evalHook() {
    if declare -F "$1" >/dev/null; then
        "$@"
    else
        eval "$1"
    fi
}

# The package's own hook NAME: a function, or a variable holding code.
_runImplicitHook() {
    local name=$1
    if declare -F "$name" >/dev/null; then
        "$name"
    elif [ -n "${!name-}" ]; then
        eval "${!name}"
    fi
}

runHook() {
    local name=$1
    shift
    local slice="${name%Hook}Hooks[@]"
    local -a hooks=()
    # Expanded once, now: entries appended while these run do not run here.
    if [ -n "${!slice+set}" ]; then hooks=("${!slice}"); fi
    _runImplicitHook "$name"
    local hook
    for hook in ${hooks[@]+"${hooks[@]}"}; do
        _evalHook "$hook" "$@"
    done
}

fixupPhase() {
    local output
    for output in $(getAllOutputNames); do
        if [ -e "${!output}" ]; then chmod -R u+w "${!output}"; fi
    done
    runHook preFixup
    for output in $(getAllOutputNames); do
        prefix="${!output}" runHook fixupOutput
    done
    runHook postFixup
}
