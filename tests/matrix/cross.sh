#!/usr/bin/env bash
# The injector on other architectures: the fixture cross-compiled for aarch64, armhf, riscv64,
# ppc64 (big endian, ELFv1), s390x (big endian), ppc (32-bit big endian) and mips (32-bit big
# endian), run under qemu-user with the cross glibc before and after `ldcache embed`/`strip`. See
# README.md beside this file.
#
# Two compilers per target, both with Debian's cross binutils, cross glibc and cross libgcc:
# - gcc: Debian's gcc-12-TRIPLE, linked with its default ld.bfd. It is not installed (in Debian 12
#   it conflicts with gcc-multilib, which the project's other tests need) but downloaded and
#   unpacked into a private prefix by cross-gcc.sh, which prints the driver's path.
# - clang (--target=TRIPLE), with ld.bfd and, where it can link glibc's startup files, lld.
#
# usage: tests/matrix/cross.sh [-k] [FILTER]
#   FILTER: only the configurations whose name contains it (e.g. "gcc", "arm64-clang", "static");
#   -k: keep the work directory.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

parse_options "$@"

# triple | Debian architecture | qemu-user binary | extra clang flags | clang's linkers (bfd, lld)
TARGETS=(
  "aarch64-linux-gnu|arm64|qemu-aarch64||bfd lld"
  "arm-linux-gnueabihf|armhf|qemu-arm||bfd lld"
  "riscv64-linux-gnu|riscv64|qemu-riscv64||bfd"
  "powerpc64-linux-gnu|ppc64|qemu-ppc64||bfd"
  "s390x-linux-gnu|s390x|qemu-s390x||bfd"
  "powerpc-linux-gnu|powerpc|qemu-ppc|-msecure-plt -B/usr/powerpc-linux-gnu/lib -L/usr/powerpc-linux-gnu/lib|bfd"
  "mips-linux-gnu|mips|qemu-mips||bfd lld"
)
# lld 14 cannot link the others: riscv64 (R_RISCV_ALIGN in glibc's Scrt1.o needs linker relaxation),
# ppc64 big endian ("ABI version 1 is not supported"), s390x (no SystemZ support), and for ppc32
# clang's driver picks i386 startup files unless pointed at the cross sysroot (done above).
# gcc needs no extra flag: Debian's powerpc gcc defaults to -msecure-plt.

# name suffix | mode | compiler flags | link flags | after linking (none, strip)
VARIANTS=(
  "pie|pie|-O2||none"
  "nopie-relro-now|nopie|-O2|-Wl,-z,relro,-z,now|none"
  "pie-g-noseparate-code|pie|-O0 -g|-Wl,-z,noseparate-code|none"
  "pie-strip|pie|-O2||strip"
  "static|static|-O2||none"
)

packages=(clang lld binutils elfutils python3 qemu-user)
for target in "${TARGETS[@]}"; do
  IFS='|' read -r triple arch _ <<<"$target"
  packages+=("binutils-$triple" "libc6-dev-$arch-cross" "libgcc-12-dev-$arch-cross")
done
need_packages "${packages[@]}"
build_tool
tool_info

# mold 1.10 is not used here; no refusal is expected.
KNOWN_REFUSALS=()

WORK=$(mktemp -d /tmp/ldcache-matrix-cross.XXXXXX)
if [ "$KEEP" = 0 ]; then trap 'rm -rf "$WORK"' EXIT; else echo "work directory: $WORK"; fi
START=$(date +%s)
renice -n 10 -p $$ >/dev/null # other builds share the machine

# The configuration names the loops below go through, for the plan.
configuration_names() {
  local target triple arch linkers linker build compiler variant suffix
  for target in "${TARGETS[@]}"; do
    IFS='|' read -r triple arch _ _ linkers <<<"$target"
    for build in $(for linker in $linkers; do echo "clang|$linker"; done) "gcc|bfd"; do
      IFS='|' read -r compiler linker <<<"$build"
      for variant in "${VARIANTS[@]}"; do
        suffix=${variant%%|*}
        [ "$linker" = lld ] && [ "$suffix" != pie ] && [ "$suffix" != nopie-relro-now ] && continue
        echo "$arch-$compiler-$linker-$suffix"
      done
    done
  done
}
plan_configurations "$(configuration_names | grep -cF -- "$FILTER" || true)"

for target in "${TARGETS[@]}"; do
  IFS='|' read -r triple arch qemu clang_flags linkers <<<"$target"
  builds=()
  for linker in $linkers; do builds+=("clang|$linker"); done
  builds+=("gcc|bfd")
  gcc="" # the private gcc's driver, prepared for the first gcc configuration the filter selects
  for build in "${builds[@]}"; do
    IFS='|' read -r compiler linker <<<"$build"
    for variant in "${VARIANTS[@]}"; do
      IFS='|' read -r suffix mode cflags ldflags post <<<"$variant"
      # one lld configuration per target is enough: PIE
      [ "$linker" = lld ] && [ "$suffix" != pie ] && [ "$suffix" != nopie-relro-now ] && continue
      name=$arch-$compiler-$linker-$suffix
      [ -n "$FILTER" ] && [[ $name != *"$FILTER"* ]] && continue
      if [ "$compiler" = clang ]; then
        cc="clang --target=$triple"
        flags="$cflags $clang_flags"
      else
        if [ -z "$gcc" ] && ! gcc=$("$MATRIX_DIR/cross-gcc.sh" "$triple" "$arch"); then
          fail "$arch-gcc: cannot prepare the private gcc-12-$triple (cross-gcc.sh)"
          break
        fi
        cc=$gcc
        flags=$cflags
      fi
      t=$WORK/$name
      mkdir -p "$t"
      if ! AR=$triple-ar build_fixture "$t" "$cc" "$mode" "$flags" "-fuse-ld=$linker $ldflags"; then
        fail "$name: build"
        sed 's/^/    /' "$t/build.log" | head -10
        continue
      fi
      if [ "$post" = strip ]; then
        for f in $(elf_files "$t/store" "$t/bin"); do "$triple-strip" "$f"; done
      fi
      check_embedded "$name" "$t" run "$qemu" -L "/usr/$triple"
      [ "$KEEP" = 1 ] || rm -rf "$t"
    done
  done
done

echo "configurations: $CONFIGS_CHECKED, ELF files checked: $FILES_CHECKED, seconds: $(($(date +%s) - START))"
finish
