# shellcheck shell=bash
# Writes a library resolution cache note (.note.nixos.ldcache) into every
# dynamically linked ELF file of every output, so that a patched glibc loader
# opens each DT_NEEDED library directly instead of walking the RUNPATH.
#
# Opt out with `dontLdCache = true;`.
#
# Ordering: the note records where each library is found on the file's
# *final* RUNPATH, and carries a fingerprint of that RUNPATH; any later edit
# (patchelf --set-rpath, --shrink-rpath, autoPatchelfHook) makes it stale and
# the loader then ignores it. So the work must come after every step that
# can still change an ELF file:
#   - fixupOutputHooks (strip, patchelf --shrink-rpath, move-lib64, ...)
#     all run inside `runHook fixupOutput`, before `runHook postFixup`;
#   - the package's own `postFixup` runs first in `runHook postFixup`;
#   - autoPatchelfHook and other hooks append to postFixupHooks when they are
#     sourced, at setup time, before any phase runs.
# Registering in postFixupHooks from a preFixupHooks function therefore puts
# the work after all of them: at preFixup time every hook has been sourced,
# and runHook expands the postFixupHooks array only when postFixup starts.
#
# Cross-compiling: @ldcache@ is built for the build platform (this hook is a
# native build input) and edits host-platform files of any ELF class and byte
# order, so nothing here depends on the host platform.
#
# This file is sourced by stdenv's setup: it sets no shell options and reads
# every optional variable with a default, so it also works under `set -u`
# and with __structuredAttrs.

# The paths of all outputs that exist, one per line.
_ldcacheOutputPaths() {
    local names output
    if declare -F getAllOutputNames >/dev/null; then
        names=$(getAllOutputNames)
    else
        # stdenv before getAllOutputNames: outputs is a plain string.
        names=${outputs:-out}
    fi
    for output in $names; do
        if [ -e "${!output-}" ]; then
            echo "${!output}"
        fi
    done
}

# Runs `ldcache embed` once over all outputs: one process for the whole
# build, so files are read in parallel and hard links shared between outputs
# are edited once. The tool prints one summary line (and one line per file it
# refused) on stderr. A file it cannot take a note for is left untouched and
# is no error (the loader then simply searches as usual); the tool fails only
# on usage or I/O errors, which mean the outputs could not be read or written,
# and those fail the build.
ldcacheEmbed() {
    if [ -n "${dontLdCache-}" ]; then return 0; fi

    local -a paths
    mapfile -t paths < <(_ldcacheOutputPaths)
    if [ "${#paths[@]}" -eq 0 ]; then return 0; fi

    local -a flags=(--store-dir "${NIX_STORE:-/nix/store}")
    if [ -n "${NIX_BUILD_CORES-}" ]; then flags+=(--jobs "$NIX_BUILD_CORES"); fi

    "@ldcache@" embed "${flags[@]}" -- "${paths[@]}" || {
        echo "ldcache: embedding resolution caches failed (see above)" >&2
        return 1
    }
}

# Runs in preFixup: appends the real work to postFixupHooks, so it comes last.
_ldcacheRegisterLast() {
    postFixupHooks+=(ldcacheEmbed)
}

preFixupHooks+=(_ldcacheRegisterLast)
