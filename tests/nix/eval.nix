# Evaluation tests of the overlay, the package, the flake and the closure
# test against mock-nixpkgs. Each attribute is one check: true when it holds.
# tests/nix/run.sh evaluates them one by one; the cases that must fail to
# evaluate are checked there, not here.
let
  mock = ./mock-nixpkgs;
  overlay = import ../../nix/overlay.nix;
  pkgs = import mock { overlays = [ overlay ]; };
  stock = import mock { };
  musl = import mock {
    overlays = [ overlay ];
    libc = "musl";
  };

  names = map (drv: drv.name);
  contains = text: part: builtins.replaceStrings [ part ] [ "" ] text != text;
  hasHook = stdenv: builtins.elem "ldcache-hook" (names (builtins.filter builtins.isAttrs stdenv.defaultNativeBuildInputs));

  # flake.nix's outputs, with the mock as its nixpkgs input.
  flake =
    let
      nixpkgs = {
        outPath = mock;
        inherit (stock) lib;
        legacyPackages = stock.lib.genAttrs [ "x86_64-linux" "aarch64-linux" ] (
          system: import mock { localSystem = { inherit system; }; }
        );
      };
      self = (import ../../flake.nix).outputs { inherit self nixpkgs; };
    in
    self;

  closure = import ./closure.nix { inherit pkgs; };
  closurePaths = closure.closure.paths;
  programOf = name: builtins.head (builtins.filter (p: p.name == name) closurePaths);
in
{
  hook-in-stdenv = hasHook pkgs.stdenv && builtins.elem pkgs.ldcache-hook pkgs.stdenv.extraNativeBuildInputs;

  hook-in-derived-stdenvs = hasHook pkgs.stdenvNoCC && hasHook pkgs.hello.stdenv;

  hook-once = builtins.length (builtins.filter (d: d == pkgs.ldcache-hook) pkgs.stdenv.extraNativeBuildInputs) == 1;

  tool-built-without-hook = !(hasHook pkgs.ldcache.stdenv) && !(hasHook pkgs.ldcache-hook.stdenv);

  hook-substitutes-tool-by-store-path =
    pkgs.ldcache-hook.substitutions == { ldcache = "${pkgs.ldcache}/bin/ldcache"; }
    && baseNameOf pkgs.ldcache-hook.script == "ldcache.sh";

  glibc-patched =
    pkgs.glibc.patches == [
      "nixpkgs-own.patch"
      ../../nix/glibc/ldcache-2.43.patch
    ];

  glibc-version-with-suffix =
    (import mock {
      overlays = [ overlay ];
      glibcVersion = "2.43";
    }).glibc.patches == [
      "nixpkgs-own.patch"
      ../../nix/glibc/ldcache-2.43.patch
    ];

  other-stdenv-arguments-kept = pkgs.stdenv.cc == stock.stdenv.cc && pkgs.stdenv.name == stock.stdenv.name;

  cross-tool-for-build-platform =
    let
      cross = import mock {
        overlays = [ overlay ];
        crossSystem.system = "aarch64-linux";
      };
    in
    hasHook cross.stdenv
    && cross.stdenv.hostPlatform.system == "aarch64-linux"
    && cross.ldcache.stdenv.hostPlatform.system == "x86_64-linux"
    && cross.ldcache.outPath == pkgs.ldcache.outPath;

  flake-ldcache-is-the-hooks-tool = flake.packages.x86_64-linux.ldcache.outPath == pkgs.ldcache.outPath;

  non-glibc-host-untouched = !(hasHook musl.stdenv) && musl.glibc.patches == [ "nixpkgs-own.patch" ] && musl ? ldcache;

  dontLdCache-reaches-derivation =
    (pkgs.stdenv.mkDerivation {
      name = "opted-out";
      dontLdCache = true;
    }).drvAttrs.dontLdCache;

  package-source-is-cargo-only =
    map baseNameOf pkgs.ldcache.src.fileset.include == [
      "Cargo.toml"
      "Cargo.lock"
      "crates"
    ]
    && map baseNameOf pkgs.ldcache.src.fileset.exclude == [ "fuzz" ];

  package-version-from-cargo = pkgs.ldcache.version == (builtins.fromTOML (builtins.readFile ../../Cargo.toml)).workspace.package.version;

  # The sandbox-safe tests, each of them a test file of some crate.
  package-tests-selected =
    let
      flags = pkgs.ldcache.cargoTestFlags;
      named = builtins.genList (i: builtins.elemAt flags (2 * i + 3)) ((builtins.length flags - 2) / 2);
      crates = builtins.attrNames (builtins.readDir ../../crates);
      exists = name: builtins.any (crate: builtins.pathExists (../../crates + "/${crate}/tests/${name}.rs")) crates;
    in
    flags == [ "--lib" "--bins" "--test" "compute" "--test" "oracle" "--test" "generate" "--test" "bad_input" ] && builtins.all exists named;

  # The manual pages and completions, made by the tool: natively only.
  package-installs-manual-and-completions =
    let
      cross = import mock { crossSystem.system = "aarch64-linux"; };
    in
    builtins.elem "mock-installShellFiles" pkgs.ldcache.nativeBuildInputs
    && contains pkgs.ldcache.postInstall "ldcache generate man"
    && (cross.callPackage ../../nix/package.nix { }).postInstall == "";

  package-meta = with pkgs.ldcache.meta; mainProgram == "ldcache" && license.spdxId == "MIT" && platforms == stock.lib.platforms.linux;

  flake-packages = builtins.all
    (
      system: builtins.attrNames flake.packages.${system} == [
        "default"
        "ldcache"
        "test-closure"
      ]
    ) [ "x86_64-linux" "aarch64-linux" ];

  # A NixOS module taking its arguments (real-tree.sh evaluates it with the tree's module system).
  flake-module-is-a-module = builtins.functionArgs flake.nixosModules.default == {
    config = false;
    lib = false;
    pkgs = false;
  };

  flake-overlay-is-nix-overlay = (import mock { overlays = [ flake.overlays.default ]; }) ? ldcache-hook;

  flake-checks = builtins.attrNames flake.checks.aarch64-linux == [
    "graft"
    "hook"
    "ldcache"
    "test-closure"
  ];

  flake-dev-shell-and-formatter =
    flake.devShells.x86_64-linux.default.name == "shell" && flake.formatter.x86_64-linux.name == "nixpkgs-fmt";

  closure-libraries-each-own-path =
    let
      libraries = (programOf "deep").buildInputs;
    in
    builtins.length libraries == 30 && builtins.length (stock.lib.attrNames (builtins.listToAttrs (map (l: stock.lib.nameValuePair l.outPath true) libraries))) == 30;

  closure-control-opted-out =
    let
      control = programOf "deep-control";
    in
    control.dontLdCache && builtins.all (l: l.dontLdCache) control.buildInputs && !((programOf "deep") ? dontLdCache);

  closure-real-packages = builtins.all (p: builtins.elem p closurePaths) [
    pkgs.hello
    pkgs.curl
    pkgs.git
  ];

  # The strace call is in the shell file the check sources.
  closure-check-runs-everything =
    builtins.all (contains closure.check.buildCommand) [
      "/bin/deep)"
      "/bin/deep-control"
      "/bin/hello --version"
      "/bin/curl --version"
      "/bin/git --version"
      "LD_LDCACHE_DISABLE=1"
      "failed-lookups.sh"
    ]
    && contains (builtins.readFile ./failed-lookups.sh) "trace=openat,?stat,newfstatat,statx";
}
