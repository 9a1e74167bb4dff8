# A package set of the real nixpkgs-structured tree TREE whose stdenv is the tree's own
# pkgs/stdenv/generic (its setup.sh and default hooks) around host tools: /bin/bash, coreutils
# and gcc from /usr through the tree's cc-wrapper and bintools-wrapper, and the host's patchelf
# through nixpkgs' patchelf setup hook. Nothing is downloaded or built from nixpkgs sources.
#
# The ldcache hook is added by nix/overlay.nix itself, applied to the final stage, so that the
# stdenv is changed exactly as for users. The overlay takes the tool and the hook from the stage
# before (`stdenv.__bootPackages`), as it does in the Linux bootstrap; that stage provides them
# here: the tool is LDCACHE (a file: the release build of the tool, or a stand-in), the hook is
# made the way the overlay makes it. PREBUILT ({ url, hash }: nix/build-prebuilt.sh's output) gives
# the final stage the overlay with that prebuilt tool instead.
{ tree, ldcache, prebuilt ? null }:

import tree {
  localSystem.system = builtins.currentSystem;

  # The shape of the tree's pkgs/stdenv/native, which does not evaluate as it is: its wrapper
  # calls lack arguments the wrappers gained since (runtimeShell, expand-response-params).
  stdenvStages = { lib, localSystem, config, ... }:
    let
      makeStdenv = cc: extraArgs: import (tree + "/pkgs/stdenv/generic") ({
        buildPlatform = localSystem;
        hostPlatform = localSystem;
        targetPlatform = localSystem;
        # The C library is the host's, outside the store.
        preHook = "export NIX_ENFORCE_PURITY=";
        initialPath = [ "/" "/usr" ];
        shell = "/bin/bash";
        fetchurlBoot = null;
        # What nixpkgs' patchelf package brings to every Linux stdenv: `patchelf --shrink-rpath`
        # in fixupOutput. The patchelf it runs is the host's (on PATH through /usr).
        extraNativeBuildInputs = [ (tree + "/pkgs/by-name/pa/patchelf/setup-hook.sh") ];
        inherit cc config;
      } // extraArgs);

      native = {
        inherit lib;
        nativeTools = true;
        nativeLibc = true;
        nativePrefix = "/usr";
        runtimeShell = "/bin/bash";
        # Only used for @response-file arguments, which nothing here passes.
        expand-response-params = "";
      };
    in
    [
      (_: rec {
        __raw = true;
        stdenvNoCC = makeStdenv null { };
        stdenv = stdenvNoCC;
        cc = import (tree + "/pkgs/build-support/cc-wrapper") (native // {
          name = "cc-native";
          inherit stdenvNoCC;
          bintools = import (tree + "/pkgs/build-support/bintools-wrapper") (native // {
            name = "bintools-native";
            inherit stdenvNoCC;
            # The wrapper links the native binutils it knows, strip not among them; the strip
            # hook runs only when the bintools provide strip, as binutils does in nixpkgs.
            extraBuildCommands = "ln -s /usr/bin/strip $out/bin/strip";
          });
        });
      })

      # The stdenv without the hook; in its package set, the tool and the hook.
      (prev: {
        inherit config;
        stdenv = makeStdenv prev.cc { };
        overlays = [
          (final: _: {
            # A copy of a host file: its closure is itself (the host's libraries are outside
            # the store), which it says as nix/package.nix does, and Nix checks.
            ldcache = final.runCommand "ldcache"
              {
                meta.mainProgram = "ldcache";
                allowedRequisites = [ "out" ];
                passthru.stdenvRequisites = [ ];
              } ''
              install -D -m 755 ${ldcache} $out/bin/ldcache
            '';
            # As nix/overlay.nix makes it.
            ldcache-hook = final.makeSetupHook
              {
                name = "ldcache-hook";
                substitutions.ldcache = final.lib.getExe final.ldcache;
              } ../../../setup-hooks/ldcache.sh;
          })
        ];
      })

      # The same stdenv, given the hook by the overlay. Like nixpkgs' final Linux stdenv, it
      # lists every store path it may reference: the overlay extends the list by the tool, and
      # building the stdenv checks it.
      (prev: {
        inherit config;
        stdenv = makeStdenv prev.stdenv.cc { allowedRequisites = [ prev.stdenv.cc.bintools ]; };
        overlays = [
          (if prebuilt == null then import ../../../nix/overlay.nix
          else import ../../../nix/make-overlay.nix { tool = import ../../../nix/prebuilt.nix prebuilt; })
        ];
      })
    ];
}
