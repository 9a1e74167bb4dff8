# The hook tests (ldcache-hook.bats) as a Nix build, against the tool built
# by nix/package.nix: `nix build .#checks.<system>.hook`. Without root or
# gcc-multilib in the sandbox, the I/O-error and 32-bit cases are skipped.
{ lib
, runCommand
, bats
, python3
, patchelf
, ldcache
}:

let
  src = lib.fileset.toSource {
    root = ../..;
    fileset = lib.fileset.unions [
      ./.
      ../../setup-hooks
      # The fingerprint's hash, for helpers.bash.
      ../e2e/ldcache_note.py
    ];
  };
in
runCommand "ldcache-hook-tests"
{
  nativeBuildInputs = [
    bats
    python3
  ];
  LDCACHE_BIN = lib.getExe ldcache;
  # Only RUNPATHs are set, shrunk and printed: any patchelf does.
  LDCACHE_PATCHELF = lib.getExe patchelf;
  # The fixtures' RUNPATHs must be exactly what the tests give: keep the
  # compiler wrapper from adding entries of its own.
  NIX_DONT_SET_RPATH = "1";
  NIX_NO_SELF_RPATH = "1";
}
  ''
    bats ${src}/tests/hook | tee $out
  ''
