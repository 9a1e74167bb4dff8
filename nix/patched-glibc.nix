# GLIBC with the loader patch for its version (./glibc/ldcache-<major.minor>.patch).
# Without a patch for that version the build stops at once with a message, and
# evaluating it warns. It cannot throw: the Linux bootstrap compares every
# stage's glibc store paths while evaluating any attribute of the package set
# (see ./make-overlay.nix), so a throw would stop everything from evaluating.
{ lib, glibc }:
let
  # The loader patches by glibc major.minor version.
  patches =
    let
      versionOf = file: builtins.match "ldcache-([0-9]+\\.[0-9]+)\\.patch" file;
      files = builtins.filter (file: versionOf file != null) (
        builtins.attrNames (builtins.readDir ./glibc)
      );
    in
    lib.listToAttrs (
      map (file: lib.nameValuePair (builtins.head (versionOf file)) (./glibc + "/${file}")) files
    );

  version = lib.versions.majorMinor glibc.version;

  unsupported =
    "ldcache: no loader patch for glibc ${version} (this nixpkgs' glibc is "
    + "${glibc.version}); supported: ${lib.concatStringsSep ", " (lib.attrNames patches)}";
in
if patches ? ${version} then
  glibc.overrideAttrs
    (old: {
      patches = (old.patches or [ ]) ++ [ patches.${version} ];
    })
else
  lib.warn unsupported (
    glibc.overrideAttrs (_: {
      preUnpack = ''
        echo ${lib.escapeShellArg unsupported} >&2
        exit 1
      '';
    })
  )
