# One store path of a graft: DRV copied to a new path of the same name whose
# files name each replacement's new path instead of its old one, and whose ELF
# files carry notes for their new search paths (`ldcache graft`). The same
# interface as nixpkgs' replaceDirectDependencies, so that NixOS's own
# replaceDependencies walk can use it (nix/module.nix) as well as ./graft.nix.
#
# The tool is the builder: a copy needs no shell, no coreutils and no Nix.
{
  # A derivation or store path with bin/ldcache.
  ldcache
, system
, storeDir ? builtins.storeDir
,
}:
{ drv
, # [ { oldDependency; newDependency; } ]: store paths, old and new of one name.
  replacements ? [ ]
,
}:
let
  base = baseNameOf (toString drv);
in
if replacements == [ ] then
  drv
else
  derivation {
    # The name after the hash: the copy's path has the original's length.
    name = builtins.unsafeDiscardStringContext (
      builtins.substring 33 (builtins.stringLength base) base
    );
    inherit system;
    builder = "${ldcache}/bin/ldcache";
    args = [
      "graft"
      "--store-dir"
      storeDir
    ]
    ++ builtins.concatMap
      (r: [
        "--replace"
        "${r.oldDependency}=${r.newDependency}"
      ])
      replacements
    ++ [
      drv
      (builtins.placeholder "out")
    ];
    # Nothing to fetch or build: copying on the machine at hand is faster.
    preferLocalBuild = true;
    allowSubstitutes = false;
  }
