# The end-to-end test that needs Nix and a full rebuild (see the README, "Using it with Nix"):
# programs built with the overlaid package set, run under strace.
# `pkgs` must be nixpkgs with nix/overlay.nix applied.
#
#   closure: what is tested
#     - deep: a program linked against `depth` tiny libraries, each its own
#       derivation (so its own store path), so its RUNPATH has `depth` + 1
#       entries, like a real Nix program; with notes.
#     - deep-control: the same, every part built with `dontLdCache = true`.
#     - hello, curl, git from the overlaid set: with notes (and so are all
#       their libraries), linked against the patched glibc.
#   check: every program with notes starts with zero failing library lookups;
#     the controls show the lookups the notes remove (more than zero).
#
# Controls run under the same patched glibc, never the stock one: a stock
# glibc would change two things at once (loader and notes), and every
# package in this set is linked against the patched one anyway. Without
# notes the patched loader takes upstream's search path unchanged, so the
# control shows exactly the storm the notes avoid. For hello, curl and git
# the control is the same files with the cache turned off at run time
# (LD_LDCACHE_DISABLE=1), rather than a second build of them and of all their
# libraries without notes.
{ pkgs
, depth ? 30
}:

let
  inherit (pkgs) lib;

  functions = map (i: "deep${toString i}") (lib.range 1 depth);

  # lib<function>.so, alone in its store path.
  library =
    extraAttrs: function:
    pkgs.stdenv.mkDerivation (
      {
        pname = "lib${function}";
        version = "1";
        dontUnpack = true;
        buildPhase = ''
          echo 'int ${function}(void) { return 1; }' > ${function}.c
          $CC -shared -fPIC -o lib${function}.so ${function}.c
        '';
        installPhase = "install -D lib${function}.so $out/lib/lib${function}.so";
      }
      // extraAttrs
    );

  # A program calling every library; the compiler wrapper adds one RUNPATH
  # entry per library directory it links from.
  program =
    name: extraAttrs:
    pkgs.stdenv.mkDerivation (
      {
        inherit name;
        dontUnpack = true;
        buildInputs = map (library extraAttrs) functions;
        buildPhase = ''
          {
            for f in ${toString functions}; do echo "int $f(void);"; done
            echo 'int main(void) { return 0'
            for f in ${toString functions}; do echo " + $f()"; done
            echo " != ${toString depth}; }"
          } > main.c
          $CC -o ${name} main.c ${lib.concatMapStringsSep " " (f: "-l${f}") functions}
        '';
        installPhase = "install -D ${name} $out/bin/${name}";
      }
      // extraAttrs
    );

  deep = program "deep" { };
  deep-control = program "deep-control" { dontLdCache = true; };

  withNotes = [
    "${deep}/bin/deep"
    "${lib.getExe pkgs.hello} --version"
    "${lib.getExe pkgs.curl} --version"
    "${lib.getExe pkgs.git} --version"
  ];

  closure = pkgs.symlinkJoin {
    name = "ldcache-test-closure";
    paths = [
      deep
      deep-control
      pkgs.hello
      pkgs.curl
      pkgs.git
    ];
  };

  check =
    pkgs.runCommand "ldcache-test-closure-check" { nativeBuildInputs = [ pkgs.strace ]; }
      ''
        source ${./failed-lookups.sh}

        # expect none|some COUNT WHAT: records COUNT, fails (showing the
        # failing calls) unless it is as expected. Callers assign COUNT first:
        # a program that fails under strace then ends the build, which set -e
        # would not notice inside an argument.
        expect() {
          echo "$3: $2 failing library lookups" | tee -a $out/report
          if [ "$1" = none ]; then
            [ "$2" -eq 0 ] || { cat failed.log >&2; return 1; }
          else
            [ "$2" -gt 0 ]
          fi
        }

        mkdir -p $out
        n=$(failures ${deep-control}/bin/deep-control)
        expect some "$n" "control, built with dontLdCache: deep-control"

        # Per program, a control may find everything at once (hello on a
        # platform without glibc-hwcaps subdirectories); all of them cannot.
        disabled=0
        ${lib.concatMapStrings (command: ''
          n=$(failures ${command})
          expect none "$n" "with notes: ${command}"
          n=$(failures -E LD_LDCACHE_DISABLE=1 ${command})
          echo "control, LD_LDCACHE_DISABLE=1: $n failing library lookups: ${command}" | tee -a $out/report
          disabled=$((disabled + n))
        '') withNotes}
        expect some "$disabled" "control, LD_LDCACHE_DISABLE=1: all programs"
      '';
in
{
  inherit closure check;
}
