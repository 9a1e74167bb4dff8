#!/usr/bin/env bats
# setup-hooks/ldcache.sh inside an emulated stdenv fixupPhase (stdenv.bash),
# on real ELF files in a fake store.

# out, lib, bin and store are set by make_outputs (helpers.bash).
# shellcheck disable=SC2154

bats_require_minimum_version 1.5.0

setup_file() {
    load helpers
    make_dependencies
}

setup() {
    load helpers
    make_outputs
    make_hook
}

teardown() {
    # A test may have made a file immutable; bats must be able to clean up.
    if [ -n "${immutable-}" ]; then chattr -i "$immutable"; fi
}

# Every ELF file of the three outputs that needs a library.
assert_all_notes_current() {
    assert_note_current "$lib/lib/libbaz.so" "$(runpath_of "$lib/lib/libbaz.so")"
    assert_note_current "$bin/bin/prog" "$(runpath_of "$bin/bin/prog")"
    assert_note_current "$out/bin/tool" "$(runpath_of "$out/bin/tool")"
}

runpath_of() {
    "$(patchelf_bin)" --print-rpath "$1"
}

summary_lines() {
    grep -c '^ldcache: [0-9]* files: ' <<<"$output"
}

@test "all outputs are embedded by one run of the tool, with the store directory" {
    run_fixup outputs="out lib bin" out="$out" lib="$lib" bin="$bin" --
    [ "$status" -eq 0 ]
    [ "$(tool_runs)" -eq 1 ]
    [ "$(cat "$BATS_TEST_TMPDIR/calls")" = "embed --store-dir $store --jobs 2 -- $out $lib $bin" ]
    [ "$(summary_lines)" -eq 1 ]
    [[ "$output" == *"4 files: 3 cached"* ]]
    assert_all_notes_current
}

@test "dontLdCache=1: the tool does not run" {
    run_fixup outputs="out lib bin" out="$out" lib="$lib" bin="$bin" dontLdCache=1 --
    [ "$status" -eq 0 ]
    [ "$(tool_runs)" -eq 0 ]
    [ -z "$output" ]
    run ! has_note "$bin/bin/prog"
}

@test "dontLdCache empty (Nix's false): the tool runs" {
    run_fixup outputs="out lib bin" out="$out" lib="$lib" bin="$bin" dontLdCache= --
    [ "$status" -eq 0 ]
    [ "$(tool_runs)" -eq 1 ]
    assert_all_notes_current
}

@test "structured attrs: outputs from the associative array, all in one run" {
    cat >"$BATS_TEST_TMPDIR/.attrs.sh" <<EOF
declare -A outputs=(['out']='$out' ['lib']='$lib' ['bin']='$bin' )
declare dontLdCache=''
declare name='pkg'
EOF
    run_fixup NIX_ATTRS_SH_FILE="$BATS_TEST_TMPDIR/.attrs.sh" --
    [ "$status" -eq 0 ]
    [ "$(tool_runs)" -eq 1 ]
    local call
    call=$(cat "$BATS_TEST_TMPDIR/calls")
    [[ "$call" == *" $out"* && "$call" == *" $lib"* && "$call" == *" $bin"* ]]
    assert_all_notes_current
}

@test "structured attrs: dontLdCache = true (declare dontLdCache=1) skips the tool" {
    cat >"$BATS_TEST_TMPDIR/.attrs.sh" <<EOF
declare -A outputs=(['out']='$out' ['lib']='$lib' ['bin']='$bin' )
declare dontLdCache=1
EOF
    run_fixup NIX_ATTRS_SH_FILE="$BATS_TEST_TMPDIR/.attrs.sh" --
    [ "$status" -eq 0 ]
    [ "$(tool_runs)" -eq 0 ]
    run ! has_note "$bin/bin/prog"
}

@test "an autoPatchelf-like postFixup hook registered after ours: the note has the final RUNPATH" {
    local patchelf new
    patchelf=$(patchelf_bin)
    new=$store/0e1-empty/lib:$store/0new-libfoo/lib
    run_fixup outputs="out lib bin" out="$out" lib="$lib" bin="$bin" -- \
        "repointFoo() { '$patchelf' --set-rpath '$new' '$out/bin/tool' '$lib/lib/libbaz.so'; }" \
        "postFixupHooks+=(repointFoo)"
    [ "$status" -eq 0 ]
    [ "$(runpath_of "$out/bin/tool")" = "$new" ]
    assert_note_current "$out/bin/tool" "$new"
    assert_note_current "$lib/lib/libbaz.so" "$new"
    show_json "$out/bin/tool" | grep -q "=$store/0new-libfoo/lib/libfoo.so"
}

@test "control: run from postFixupHooks at setup time, before that hook, the note is not current" {
    local patchelf new
    patchelf=$(patchelf_bin)
    new=$store/0e1-empty/lib:$store/0new-libfoo/lib
    run_fixup outputs="out" out="$out" -- \
        "preFixupHooks=()" \
        "postFixupHooks+=(ldcacheEmbed)" \
        "repointFoo() { '$patchelf' --set-rpath '$new' '$out/bin/tool'; }" \
        "postFixupHooks+=(repointFoo)"
    [ "$status" -eq 0 ]
    [ "$(tool_runs)" -eq 1 ]
    run show_json "$out/bin/tool"
    [[ "$output" != *'"current": true'* ]]
}

@test "the package's own postFixup and fixupOutput hooks run before the hook" {
    local patchelf
    patchelf=$(patchelf_bin)
    run_fixup outputs="out bin" out="$out" bin="$bin" \
        postFixup="'$patchelf' --set-rpath '$store/0foo-libfoo/lib:$store/0bar-libbar/lib' '$out/bin/tool'" -- \
        "shrink() { if [ \"\$prefix\" = '$bin' ]; then '$patchelf' --shrink-rpath '$bin/bin/prog'; fi; }" \
        "fixupOutputHooks+=(shrink)"
    [ "$status" -eq 0 ]
    assert_note_current "$out/bin/tool" "$store/0foo-libfoo/lib:$store/0bar-libbar/lib"
    assert_note_current "$bin/bin/prog" "$(runpath_of "$bin/bin/prog")"
    [[ "$(runpath_of "$bin/bin/prog")" != *empty* ]]
}

@test "a refused file does not fail the phase; the others get their notes" {
    printf '\177ELF\002\001\001garbage' >"$out/bin/broken"
    run_fixup outputs="out lib bin" out="$out" lib="$lib" bin="$bin" --
    [ "$status" -eq 0 ]
    [[ "$output" == *"refused $out/bin/broken"* ]]
    [[ "$output" == *", 1 refused ("* ]]
    assert_all_notes_current
}

@test "an I/O error of the tool fails the phase" {
    touch "$BATS_TEST_TMPDIR/probe"
    chattr +i "$BATS_TEST_TMPDIR/probe" 2>/dev/null || skip "chattr +i needs root on a file system that has it"
    chattr -i "$BATS_TEST_TMPDIR/probe"
    # Made unwritable after fixupPhase's chmod, by the package's own preFixup.
    immutable=$out/bin/tool
    run_fixup outputs="out" out="$out" preFixup="chattr +i '$immutable'" --
    [ "$status" -ne 0 ]
    [[ "$output" == *"$immutable: Operation not permitted"* ]]
    [[ "$output" == *"ldcache: embedding resolution caches failed"* ]]
}

@test "older stdenv without getAllOutputNames: \$outputs is used" {
    run_fixup outputs="out bin" out="$out" bin="$bin" -- \
        "unset -f getAllOutputNames" \
        "fixupPhase() { runHook preFixup; for o in \$outputs; do prefix=\${!o} runHook fixupOutput; done; runHook postFixup; }"
    [ "$status" -eq 0 ]
    [ "$(cat "$BATS_TEST_TMPDIR/calls")" = "embed --store-dir $store --jobs 2 -- $out $bin" ]
}

@test "an output that was never created is left out" {
    run_fixup outputs="out dev bin" out="$out" dev="$store/${BATS_TEST_NUMBER}dev-missing" bin="$bin" --
    [ "$status" -eq 0 ]
    [ "$(cat "$BATS_TEST_TMPDIR/calls")" = "embed --store-dir $store --jobs 2 -- $out $bin" ]
}

@test "files of another ELF class in the same run (host files of any class)" {
    local dir=$store/0m32-lib32/lib
    # shellcheck disable=SC2034 # read by compile
    local -a cc_flags=(-m32)
    compile "$dir/libfoo32.so" foo32 "" 2>/dev/null || skip "gcc -m32 (gcc-multilib) is missing"
    compile "$out/lib32/libuser32.so" user32 "$dir" foo32
    run_fixup outputs="out" out="$out" --
    [ "$status" -eq 0 ]
    [ "$(tool_runs)" -eq 1 ]
    assert_note_current "$out/lib32/libuser32.so" "$dir"
    assert_note_current "$out/bin/tool" "$(runpath_of "$out/bin/tool")"
}

@test "sourcing the hook changes no shell option and only appends to preFixupHooks" {
    run bash -c "
        before=\"\$- \$(shopt -p) \$(set -o)\"
        source '$hook'
        after=\"\$- \$(shopt -p) \$(set -o)\"
        [ \"\$before\" = \"\$after\" ] || { echo options changed; exit 1; }
        declare -p preFixupHooks
        [ -z \"\${postFixupHooks+set}\" ] || echo postFixupHooks set"
    [ "$status" -eq 0 ]
    [ "$output" = 'declare -a preFixupHooks=([0]="_ldcacheRegisterLast")' ]
}
