# shellcheck shell=bash
# A stand-in for autoPatchelfHook: appended to postFixupHooks when sourced (before any phase
# runs), it sets the RUNPATH of every ELF file in $out/bin to $hookRunpath after postFixup.

# shellcheck disable=SC2154 # out and hookRunpath come from the derivation
_setRunpath() {
    local file
    for file in "$out"/bin/*; do
        if isELF "$file"; then
            echo "set-runpath-hook: $file"
            patchelf --set-rpath "$hookRunpath" "$file"
        fi
    done
}

postFixupHooks+=(_setRunpath)
