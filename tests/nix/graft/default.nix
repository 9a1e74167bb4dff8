# A small closure built the normal way against a stock glibc that is a store
# path, and its graft onto the patched glibc (nix/graft.nix): eight libraries
# in their own store paths, each needing the one before it and listing all of
# them on its RUNPATH (deep search paths, as Nix's linker wrapper writes), a
# plugin the program dlopens by its absolute path, a data file that needs no
# copy, and a script that runs the program. Built with the host's gcc by
# derivations whose builder is /bin/sh (no nixpkgs needed).
{
  # Store paths (strings): the tool (bin/ldcache), the two C libraries (both
  # named glibc-<version>, so of one length).
  ldcache
, stockGlibc
, patchedGlibc
, system ? builtins.currentSystem
,
}:
let
  glibc = builtins.storePath stockGlibc;
  patched = builtins.storePath patchedGlibc;

  build =
    name: env: script:
    derivation (
      {
        inherit name system;
        builder = "/bin/sh";
        args = [
          "-c"
          ''
            set -e
            mkdir -p "$out"
            cd "$out"
            ${script}
          ''
        ];
        PATH = "/usr/bin:/bin";
      }
      // env
    );

  # gcc ARGS for an object linked the Nix way: the store glibc's loader, and
  # RUNPATH entries for DIRS and the C library.
  link =
    dirs:
    "-Wl,--dynamic-linker=${glibc}/lib/ld-linux-x86-64.so.2 -Wl,--enable-new-dtags"
    + " -Wl,-rpath,${builtins.concatStringsSep ":" (dirs ++ [ "${glibc}/lib" ])}";

  # lib<n>.so: returns n plus what the library before it returns.
  library =
    n: before:
    build "lib${toString n}" { } ''
      mkdir lib
      ${
        if before == [ ] then
          ''echo 'int l${toString n} (void) { return ${toString n}; }' > l.c''
        else
          ''echo 'int l${toString (n - 1)} (void); int l${toString n} (void) { return ${toString n} + l${toString (n - 1)} (); }' > l.c''
      }
      gcc -shared -fPIC -o lib/libl${toString n}.so l.c ${
        if before == [ ] then "" else "-L${builtins.head before}/lib -ll${toString (n - 1)}"
      } ${link (map (l: "${l}/lib") before)}
      rm l.c
    '';

  # Each library's list starts with the one it needs.
  libraries = builtins.foldl'
    (
      built: n: [ (library n built) ] ++ built
    ) [ ]
    (builtins.genList (i: i + 1) 8);

  lastLibrary = builtins.head libraries;

  plugin = build "plugin" { } ''
    mkdir lib
    echo 'int l3 (void); int plugin (void) { return 100 + l3 (); }' > p.c
    gcc -shared -fPIC -o lib/libplugin.so p.c -L${builtins.elemAt libraries 5}/lib -ll3 ${
      link (map (l: "${l}/lib") (builtins.genList (i: builtins.elemAt libraries (7 - i)) 3))
    }
    rm p.c
  '';

  data = build "greeting" { } ''
    echo grafted > greeting
  '';

  program = build "program" { } ''
    mkdir bin
    cat > p.c <<'C'
    #include <dlfcn.h>
    #include <stdio.h>
    int l8 (void);
    int main (void)
    {
      void *h = dlopen ("${plugin}/lib/libplugin.so", RTLD_NOW);
      int (*p) (void) = h ? (int (*) (void)) dlsym (h, "plugin") : 0;
      FILE *f = fopen ("${data}/greeting", "r");
      char word[32] = "";
      if (f == NULL || fscanf (f, "%31s", word) != 1 || p == NULL)
        return 1;
      printf ("%s l8=%d plugin=%d\n", word, l8 (), p ());
      return 0;
    }
    C
    gcc -o bin/program p.c -L${lastLibrary}/lib -ll8 ${link (map (l: "${l}/lib") libraries)}
    rm p.c
  '';

  script = build "run-program" { } ''
    mkdir bin
    printf '#!/bin/sh\nexec %s/bin/program "$@"\n' ${program} > bin/run-program
    chmod +x bin/run-program
  '';
in
{
  inherit
    program
    plugin
    data
    script
    ;
  grafted = import ../../../nix/graft.nix
    {
      ldcache = builtins.storePath ldcache;
      inherit system;
    }
    {
      drv = script;
      replacements = [
        {
          oldDependency = glibc;
          newDependency = patched;
        }
      ];
    };
}
