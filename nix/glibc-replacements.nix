# What a graft replaces: each output of GLIBC by the same output of GLIBC
# with the loader patch (./patched-glibc.nix), in the form of nixpkgs'
# replaceDependencies ({ oldDependency; newDependency; }). Used by the flake's
# lib.graft and by the NixOS module's graft mode.
{ lib, glibc }:
let
  patched = import ./patched-glibc.nix { inherit lib glibc; };
in
map
  (output: {
    oldDependency = glibc.${output};
    newDependency = patched.${output};
  })
  glibc.outputs
