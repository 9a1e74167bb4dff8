# Every package built for a Linux/glibc host gets resolution-cache notes, and
# glibc gets the loader patch that reads them. Changing glibc changes every
# package: applying this overlay rebuilds the whole package set.
#
# TOOL: null (the default, ./overlay.nix) builds the tool from source, or a
# prebuilt tool (./prebuilt.nix: a statically linked binary that carries its
# own setup hook), which costs evaluation nothing.
{ tool ? null }:
_final: prev:

let
  inherit (prev) lib;
  inherit (prev.stdenv) buildPlatform hostPlatform;

  # Built from source, the tool and its hook come from a separate, un-overlaid
  # instance of the same nixpkgs for the build platform, not from `prev` or
  # `final`:
  # - nixpkgs applies overlays to every stdenv bootstrap stage. Built from
  #   `prev`, the tool would need rustc and its dependencies inside the
  #   bootstrap, built with the patched glibc, and would be rebuilt with the
  #   world instead of fetched from the binary cache.
  # - Built from `final`, makeSetupHook (stdenvNoCC, which is derived from
  #   stdenv) and the tool (stdenv) would need the stdenv that contains the
  #   hook: infinite recursion.
  # - For the build platform: the hook is a native build input. When
  #   cross-compiling it runs on the build machine and edits host files; the
  #   tool reads and writes ELF files of any class and byte order.
  # That instance is imported once: every stage after the first takes the
  # tool and the hook from the stage that built its stdenv (`__bootPackages`,
  # which this overlay also reached), and so does a cross package set, whose
  # stdenv is booted from the build platform's packages. That import is most
  # of what the overlay costs an evaluation; a prebuilt tool avoids it.
  bootPackages = prev.stdenv.__bootPackages or { };

  plain = import prev.path {
    localSystem = { inherit (buildPlatform) system; };
    overlays = [ ];
    config = { };
  };

  fromSource = tool == null;

  ldcache =
    if fromSource then
      bootPackages.ldcache or (plain.callPackage ./package.nix { })
    else if lib.meta.availableOn buildPlatform tool then
      tool
    else
      throw "ldcache: the prebuilt tool runs on ${lib.concatStringsSep ", " tool.meta.platforms}, not on the build platform ${buildPlatform.system}";

  # A prebuilt tool is its own hook (nix-support/setup-hook).
  ldcache-hook =
    if fromSource then
      bootPackages.ldcache-hook or (plain.makeSetupHook
        {
          name = "ldcache-hook";
          substitutions.ldcache = lib.getExe ldcache;
        } ../setup-hooks/ldcache.sh)
    else
      tool;

  enabled = hostPlatform.isLinux && hostPlatform.libc == "glibc";

  hasHook = builtins.elem ldcache-hook (prev.stdenv.extraNativeBuildInputs or [ ]);

  # prev.stdenv with the hook (once) or without it; prev.stdenv itself when it
  # is already so. An override drops the attributes the booter adds to a
  # stdenv (the package sets before and after it), which nixpkgs reads in
  # places: they are kept.
  withHook =
    wanted:
    if hasHook == wanted then
      prev.stdenv
    else
      prev.stdenv.override
        (old: {
          extraNativeBuildInputs =
            if wanted then
              (old.extraNativeBuildInputs or [ ]) ++ [ ldcache-hook ]
            else
              builtins.filter (input: input != ldcache-hook) old.extraNativeBuildInputs;
        } // lib.optionalAttrs wanted {
          # The final stdenv may reference only a fixed list of store paths.
          # The hook is added to it automatically (as an extraNativeBuildInput);
          # the tool, and what the tool's own stdenv may reference (its C
          # library and gcc's libraries: package.nix has Nix enforce that), are
          # added here. A tool that brings no such list (not built by a stdenv
          # that keeps one) lifts the check; `disallowedRequisites` (the
          # bootstrap tools) is kept in any case.
          allowedRequisites =
            let
              toolRequisites = ldcache.stdenvRequisites or null;
              # A prebuilt tool is the hook, which is on the list already.
              added = lib.optional fromSource ldcache ++ toolRequisites;
            in
            if old.allowedRequisites or null == null || toolRequisites == null then
              null
            else
              old.allowedRequisites ++ added;
        })
      // builtins.intersectAttrs
        {
          __bootPackages = null;
          __hatPackages = null;
        }
        prev.stdenv;
in
{
  inherit ldcache ldcache-hook;
}
// lib.optionalAttrs enabled {
  # Every bootstrap stage that builds glibc takes it from here, so
  # stdenv.cc.libc, and with it every package, gets the patched loader.
  glibc = import ./patched-glibc.nix {
    inherit lib;
    inherit (prev) glibc;
  };

  # In every stage of the bootstrap, not only the final one: the final stage
  # takes glibc, gcc's libraries, coreutils, bash, zlib, xz, ... from earlier
  # stages, and those should carry notes too. The tool comes from `plain`, so
  # no stage needs rustc. Derived stdenvs (stdenvNoCC, gccStdenv, overrideCC,
  # cross stdenvs) are built with `stdenv.override` and keep the hook.
  stdenv = withHook true;
}
  // lib.optionalAttrs (!enabled) {
  # A cross stdenv for a host that is not glibc (musl, static) is the build
  # platform's stdenv overridden, hook included: take it out again, so that
  # such package sets stay as they are (no loader reads the notes there).
  stdenv = withHook false;
}
