# What tests/nix/real-setup.sh builds with the real setup.sh (stdenv.nix) and then checks: two
# libraries, each in its own store path, and a program with two outputs that needs both, built
# as they are, with RUNPATH edits after fixupOutput, with __structuredAttrs, and opted out.
# PREBUILT: see stdenv.nix.
{ tree, ldcache, prebuilt ? null }:

let
  pkgs = import ./stdenv.nix { inherit tree ldcache prebuilt; };
  inherit (pkgs) stdenv;

  # lib/lib<name>.so, needing the libraries NEEDS (names to derivations), and include/<name>.h:
  # include/ is a store directory that holds no library. -g gives the default strip hook debug
  # sections to remove.
  library = name: needs: stdenv.mkDerivation {
    pname = "lib${name}";
    version = "1";
    src = ./src;
    # The cc-wrapper adds -L and -rpath for each library it finds in a buildInputs store path.
    buildInputs = builtins.attrValues needs;
    buildPhase = "cc -g -shared -fPIC -o lib${name}.so ${name}.c ${
      toString (map (need: "-l${need}") (builtins.attrNames needs))}";
    installPhase = ''
      install -D -m 755 lib${name}.so $out/lib/lib${name}.so
      install -D -m 644 ${name}.h $out/include/${name}.h
    '';
  };

  libfoo = library "foo" { };
  libbar = library "bar" { foo = libfoo; };

  # bin/prog in `out` needs lib/libbaz.so in `lib`, libfoo and libbar. As linked, its RUNPATH
  # also names both include directories, which `patchelf --shrink-rpath` drops in fixupOutput.
  prog = attrs: stdenv.mkDerivation ({
    pname = "prog";
    version = "1";
    src = ./src;
    outputs = [ "out" "lib" ];
    buildInputs = [ libfoo libbar ];
    buildPhase = ''
      cc -g -shared -fPIC -o libbaz.so baz.c -lfoo -lbar
      cc -g -o prog prog.c -L. -lbaz -lfoo -lbar -Wl,-rpath,$lib/lib \
        -Wl,-rpath,${libfoo}/include -Wl,-rpath,${libbar}/include
    '';
    installPhase = ''
      install -D -m 755 libbaz.so $lib/lib/libbaz.so
      install -D -m 755 prog $out/bin/prog
    '';
  } // attrs);

  # The linked RUNPATH's directories in another order: two that hold none of the program's
  # libraries first.
  reordered = "${libfoo}/include:${libbar}/include:${placeholder "lib"}/lib:${libfoo}/lib:${libbar}/lib";

  # RUNPATH edits after fixupOutput. The RUNPATH keeps its linked length (no shrinking, the
  # same directories), so that patchelf rewrites it in place: a longer one makes the host's
  # patchelf move the notes, which `prog-grown` is about.
  edited = attrs: prog ({
    dontPatchELF = true;
    postFixup = "patchelf --set-rpath ${reordered} $out/bin/prog";
  } // attrs);

  # bin/prog and lib/libbaz.so built by a buildCommand that ends with AFTER.
  command = after: stdenv.mkDerivation {
    name = "prog-command";
    buildInputs = [ libfoo libbar ];
    buildCommand = ''
      mkdir -p $out/bin $out/lib
      cc -shared -fPIC -o $out/lib/libbaz.so ${./src/baz.c} -I${./src} -lfoo -lbar
      cc -o $out/bin/prog ${./src/prog.c} -I${./src} -L$out/lib -lbaz -lfoo -lbar \
        -Wl,-rpath,$out/lib
      ${after}
    '';
  };
in
{
  inherit libfoo libbar;
  # The tool the hook runs, for `ldcache show`.
  inherit (pkgs) ldcache;

  prog = prog { };

  prog-postfixup = edited { };

  # As autoPatchelfHook does: a hook that appends to postFixupHooks when it is sourced, and
  # there sets the RUNPATH once more, after postFixup.
  prog-hooked = edited {
    nativeBuildInputs = [ ./set-runpath-hook.sh ];
    hookRunpath = "${libbar}/lib:${libfoo}/lib:${placeholder "lib"}/lib";
  };

  # The same hook in buildInputs: setup.sh sources those hooks after all native ones, the
  # stdenv's ldcache-hook among them.
  prog-hooked-late = edited {
    buildInputs = [ libfoo libbar ./set-runpath-hook.sh ];
    hookRunpath = "${libbar}/lib:${libfoo}/lib:${placeholder "lib"}/lib";
  };

  # A postFixup that makes the shrunk RUNPATH longer. The log records the file as patchelf
  # left it, to compare with what the tool left.
  prog-grown = prog {
    postFixup = ''
      patchelf --set-rpath ${reordered} $out/bin/prog
      echo "prog-grown: after postFixup: $(sha256sum $out/bin/prog)"
    '';
  };

  prog-structured = prog { __structuredAttrs = true; };

  # A runCommand-style build (buildCommand: no fixup phase) gets no note, unless it calls the
  # hook's function itself.
  prog-command = command "";
  prog-command-embedded = command "ldcacheEmbed";

  # nix/package.nix's postInstall (the manual pages and completions, which the tool makes) run on
  # the release tool with the tree's installShellFiles: the package function called with a
  # rustPlatform that hands back its arguments.
  manual =
    let
      package = import ../../../nix/package.nix {
        inherit (pkgs) lib stdenv;
        installShellFiles = null;
        rustPlatform.buildRustPackage = args: args;
      };
    in
    stdenv.mkDerivation {
      name = "ldcache-manual";
      nativeBuildInputs = [ pkgs.installShellFiles ];
      dontUnpack = true;
      installPhase = ''
        install -D -m 755 ${ldcache} $out/bin/ldcache
        ${package.postInstall}
      '';
    };

  prog-optout = prog { dontLdCache = true; };

  prog-optout-structured = prog {
    __structuredAttrs = true;
    dontLdCache = true;
  };
}
