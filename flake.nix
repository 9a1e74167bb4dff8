{
  description = "ldcache: a per-DSO shared-library resolution cache for Nix and glibc";

  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";

  outputs =
    { self, nixpkgs }:
    let
      systems = [
        "x86_64-linux"
        "aarch64-linux"
      ];
      forAllSystems = f: nixpkgs.lib.genAttrs systems f;

      # Stock nixpkgs: the tool, the hook tests and the tools of the dev
      # shell build from it (or come from the binary cache).
      plain = system: nixpkgs.legacyPackages.${system};

      # nixpkgs with the overlay: patched glibc, notes in every package.
      # Building anything from it rebuilds the world.
      overlaid =
        system:
        import nixpkgs {
          localSystem = { inherit system; };
          overlays = [ self.overlays.default ];
        };

      closureTest = system: import ./tests/nix/closure.nix { pkgs = overlaid system; };
    in
    {
      overlays.default = import ./nix/overlay.nix;

      lib = {
        # `overlay { tool = prebuilt { url = ...; hash = ...; }; }`: the overlay
        # with a prebuilt tool (nix/build-prebuilt.sh makes one), which spares
        # every evaluation the tool's own nixpkgs; `overlay { }` is the default.
        overlay = import ./nix/make-overlay.nix;
        prebuilt = import ./nix/prebuilt.nix;

        # `graft { pkgs = nixpkgs.legacyPackages.x86_64-linux; drv = pkgs.hello; }`:
        # DRV's closure with the patched loader swapped in for pkgs' glibc and
        # notes in every ELF file, without rebuilding it: only glibc is built
        # (nix/graft.nix says how, and what it costs).
        graft =
          { pkgs
          , drv
          , tool ? pkgs.callPackage ./nix/package.nix { }
          ,
          }:
          import ./nix/graft.nix
            {
              ldcache = tool;
              inherit (pkgs.stdenv.buildPlatform) system;
            }
            {
              inherit drv;
              replacements = import ./nix/glibc-replacements.nix {
                inherit (pkgs) lib glibc;
              };
            };
      };

      # `ldcache.mode`: "rebuild" (the default: the overlay), "graft" or "off".
      nixosModules.default = import ./nix/module.nix { overlay = self.overlays.default; };

      packages = forAllSystems (
        system:
        let
          # The very derivation the overlay's hook runs (the overlay builds it
          # from an un-overlaid import of the same nixpkgs), taken without
          # evaluating the overlaid set: it evaluates whatever that set's glibc.
          ldcache = (plain system).callPackage ./nix/package.nix { };
        in
        {
          default = ldcache;
          inherit ldcache;
          test-closure = (closureTest system).closure;
        }
      );

      checks = forAllSystems (system: {
        # Builds the tool and runs the tests that work in the sandbox.
        inherit (self.packages.${system}) ldcache;
        hook = (plain system).callPackage ./tests/hook/check.nix {
          inherit (self.packages.${system}) ldcache;
        };
        # Zero failing library lookups with notes, a storm without.
        test-closure = (closureTest system).check;
        # hello, curl and git from stock nixpkgs, grafted: zero failing
        # lookups, current notes; only glibc is built.
        graft = import ./tests/nix/graft-check.nix {
          pkgs = plain system;
          inherit (self.lib) graft;
          inherit (self.packages.${system}) ldcache;
        };
      });

      devShells = forAllSystems (
        system:
        let
          pkgs = plain system;
        in
        {
          default = pkgs.mkShell {
            packages = with pkgs; [
              cargo
              rustc
              clippy
              rustfmt
              gcc
              strace
              patchelf
              python3
              bats
              nixpkgs-fmt
              deadnix
            ];
          };
        }
      );

      # The formatter the checks in tests/nix/run.sh use.
      formatter = forAllSystems (system: (plain system).nixpkgs-fmt);
    };
}
