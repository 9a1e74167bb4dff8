# NixOS: how the system gets the patched loader and the notes.
#
#   ldcache.mode = "rebuild";  the overlay (nix/overlay.nix): glibc patched and
#                              notes written in every package as it is built;
#                              the whole system is rebuilt from source.
#   ldcache.mode = "graft";    the packages stay as they are (from the binary
#                              cache); only glibc is built, patched, and the
#                              system closure is grafted onto it: NixOS's own
#                              system.replaceDependencies walk, each path copied
#                              by `ldcache graft` (./graft-path.nix), which also
#                              writes the copy's notes. Needs nixpkgs 24.11 or
#                              later (replaceDirectDependencies).
#   ldcache.mode = "off";      neither.
{ overlay }:
{ config
, lib
, pkgs
, ...
}:
let
  inherit (config.ldcache) mode;
in
{
  options.ldcache.mode = lib.mkOption {
    type = lib.types.enum [
      "off"
      "rebuild"
      "graft"
    ];
    default = "rebuild";
    description = ''
      How the system gets ldcache's patched loader and resolution-cache notes:
      "rebuild" builds every package with them (the whole system from source),
      "graft" keeps the packages and grafts the system closure onto a patched
      glibc (only glibc is built; every store path that refers to glibc is
      copied once more on each change of the system), "off" neither.
    '';
  };

  config = lib.mkMerge [
    (lib.mkIf (mode == "rebuild") { nixpkgs.overlays = [ overlay ]; })
    (lib.mkIf (mode == "graft") {
      system.replaceDependencies.replacements = import ./glibc-replacements.nix {
        inherit lib;
        inherit (pkgs) glibc;
      };
      # The walk copies each path with replaceDirectDependencies: this one
      # writes the copy's notes too. Nothing is built with it, so overriding it
      # rebuilds nothing.
      nixpkgs.overlays = [
        (final: _prev: {
          replaceDirectDependencies = import ./graft-path.nix {
            ldcache = final.callPackage ./package.nix { };
            inherit (final.stdenv.buildPlatform) system;
          };
        })
      ];
    })
  ];
}
