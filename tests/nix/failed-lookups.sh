# Sourced by the Nix checks that count failing library lookups (closure.nix,
# graft-check.nix), inside their build.
#
# failures [STRACE-OPTIONS] COMMAND...: runs COMMAND under strace and prints
# how many lookups of a shared library (a path ending in .so or .so.N, or a
# glibc-hwcaps directory) failed; they go to failed.log and are added to
# $out/failed-lookups.log. `?stat`: aarch64 has no stat system call.
failures() {
  strace -f -o trace.log -e trace=openat,?stat,newfstatat,statx "$@" > /dev/null
  # awk, not grep: no failing lookup is the result hoped for, not an error.
  awk '/ = -1 E/ && /\.so(\.[0-9]+)*"|\/glibc-hwcaps/' trace.log > failed.log
  cat failed.log >> "$out/failed-lookups.log"
  wc -l < failed.log
}
