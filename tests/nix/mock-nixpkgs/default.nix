# A stand-in for the nixpkgs interface that nix/overlay.nix, nix/package.nix,
# flake.nix and tests/nix/closure.nix use, for evaluation tests on a machine
# without nixpkgs. Derivations are attribute sets: nothing is built and
# nothing is written to a store. What it keeps from nixpkgs:
#   - overlays are composed over the base set as `final: prev:` layers;
#   - stdenv is overridable (`override` takes attrs or a function of the old
#     arguments); extraNativeBuildInputs come first in its
#     defaultNativeBuildInputs, which are added to allowedRequisites when
#     that is not null;
#   - stdenvNoCC is derived from the final stdenv, makeSetupHook builds with
#     stdenvNoCC and buildRustPackage with stdenv, so a hook or tool built
#     from the overlaid set needs the stdenv that contains it (recursion);
#   - store paths depend on the inputs;
#   - `path` is this directory, so `import prev.path { ... }` gives a fresh,
#     un-overlaid instance;
#   - callPackage fills a function's arguments from the set.
{ localSystem ? {
    system = "x86_64-linux";
  }
, crossSystem ? localSystem
, overlays ? [ ]
, # Beyond nixpkgs' interface: what the tests vary.
  glibcVersion ? "2.43-1"
, libc ? "glibc"
, ...
}:

let
  lib = import ./lib.nix;

  platform = { system }: {
    inherit system libc;
    isLinux = true;
    canExecute = other: other.system == system;
  };

  # A store path that depends on everything the derivation is made of, as a
  # real one does: a derivation's attributes show its inputs as their store
  # paths (toJSON turns an attribute set with outPath into that path), so an
  # input that needs the derivation itself is an infinite recursion.
  store = name: inputs: "/nix/store/${builtins.substring 0 32 (builtins.hashString "sha256" (builtins.toJSON inputs))}-${name}";

  mkDerivationWith =
    stdenv: args:
    let
      name = args.name or "${args.pname}-${args.version}";
    in
    args
    // {
      type = "derivation";
      inherit name stdenv;
      outPath = store name {
        inherit args;
        stdenv = stdenv.outPath;
      };
      # The attributes the builder gets, as mkDerivation passes them on.
      drvAttrs = args // {
        inherit name;
      };
      overrideAttrs = f: mkDerivationWith stdenv (args // f args);
    };

  makeStdenv =
    args@{ name ? "stdenv-linux"
    , cc ? "mock-gcc"
    , extraNativeBuildInputs ? [ ]
    , allowedRequisites ? null
    , disallowedRequisites ? [ ]
    }:
    let
      defaultNativeBuildInputs = extraNativeBuildInputs ++ [ "mock-setup-hooks" ] ++ lib.optionals (cc != null) [ cc ];
      stdenv =
        lib.optionalAttrs (allowedRequisites != null)
          {
            allowedRequisites = allowedRequisites ++ defaultNativeBuildInputs;
          }
        // {
          type = "derivation";
          inherit name disallowedRequisites extraNativeBuildInputs defaultNativeBuildInputs cc;
          outPath = store name defaultNativeBuildInputs;
          hostPlatform = platform crossSystem;
          buildPlatform = platform localSystem;
          mkDerivation = mkDerivationWith stdenv;
          override = f: makeStdenv (args // (if builtins.isFunction f then f args else f));
        };
    in
    stdenv;

  base = final: {
    inherit lib;
    path = ./.;

    stdenv = makeStdenv {
      allowedRequisites = [ "mock-coreutils" ];
      disallowedRequisites = [ "mock-bootstrap-tools" ];
    };
    stdenvNoCC = final.stdenv.override { cc = null; };

    callPackage =
      fn: args:
      let
        f = if builtins.isFunction fn then fn else import fn;
      in
      f (builtins.intersectAttrs (builtins.functionArgs f) final // args);

    makeSetupHook =
      { name
      , substitutions ? { }
      }:
      script:
      final.stdenvNoCC.mkDerivation {
        inherit name substitutions script;
      };

    rustPlatform.buildRustPackage = final.stdenv.mkDerivation;
    installShellFiles = "mock-installShellFiles";

    runCommand =
      name: env: buildCommand:
      final.stdenv.mkDerivation (env // { inherit name buildCommand; });

    symlinkJoin = { name, paths }: final.runCommand name { inherit paths; } "";

    glibc = final.stdenv.mkDerivation {
      pname = "glibc";
      version = glibcVersion;
      patches = [ "nixpkgs-own.patch" ];
    };

    mkShell = { packages }: final.stdenv.mkDerivation {
      name = "shell";
      nativeBuildInputs = packages;
    };
  }
  # Packages with a program of their own name.
  // lib.genAttrs [
    "hello"
    "curl"
    "git"
    "strace"
    "bats"
    "python3"
    "patchelf"
    "cargo"
    "rustc"
    "clippy"
    "rustfmt"
    "gcc"
    "nixpkgs-fmt"
    "deadnix"
  ]
    (name: final.stdenv.mkDerivation {
      inherit name;
      meta.mainProgram = name;
    });

  # Each overlay extends the layers below it, as nixpkgs composes them.
  extend =
    below: overlay: final:
    let
      prev = below final;
    in
    prev // overlay final prev;
in
lib.fix (builtins.foldl' extend base overlays)
