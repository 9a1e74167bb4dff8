# Graft the closure of DRV onto other store paths without rebuilding it, as
# nixpkgs' replaceDependencies does, and give every copied ELF file current
# notes: the way to run the patched loader, with notes, on a closure that was
# built (or fetched) the normal way. Every store path of the closure that
# refers to a replaced path, directly or not, is copied by ./graft-path.nix to
# a path of the same name that refers to the new paths and to the other
# copies; every other path is shared with the original.
#
# The walk is written here rather than taken from nixpkgs: replaceDependencies
# exists in this form only since nixpkgs 24.11, and older trees have another
# interface. NixOS's own walk takes ./graft-path.nix in nix/module.nix.
#
# The closure's reference graph is read at evaluation time (import from
# derivation): evaluating the graft builds or fetches DRV first.
{
  # A derivation or store path with bin/ldcache.
  ldcache
, system
, storeDir ? builtins.storeDir
,
}:
{ drv
, # [ { oldDependency; newDependency; } ]: store paths (each output of a
  # multi-output package on its own), old and new of one name.
  replacements
,
}:
let
  pathOf = x: builtins.unsafeDiscardStringContext (toString x);

  # A path of the closure, usable as a build input (builtins.storePath is not
  # allowed in pure evaluation).
  withContext = path: builtins.appendContext path { ${path}.path = true; };

  # { path = [ the paths it refers to, itself left out ]; } for DRV's closure.
  # (Its paths get their context back one by one, in `withContext`.)
  graph = builtins.fromJSON (
    builtins.unsafeDiscardStringContext (builtins.readFile (derivation {
      name = "graft-references.json";
      inherit system;
      builder = "/bin/sh";
      exportReferencesGraph = [
        "graph"
        drv
      ];
      # The graph file: per path, its path, its deriver, the number of its
      # references, and those.
      args = [
        "-c"
        ''
          {
            printf '{'
            sep=
            while read -r path; do
              read -r deriver
              read -r count
              printf '%s"%s":[' "$sep" "$path"
              sep=, next=
              while [ "$count" -gt 0 ]; do
                read -r ref
                if [ "$ref" != "$path" ]; then
                  printf '%s"%s"' "$next" "$ref"
                  next=,
                fi
                count=$((count - 1))
              done
              printf ']'
            done < graph
            printf '}'
          } > "$out"
        ''
      ];
      preferLocalBuild = true;
      allowSubstitutes = false;
    }))
  );

  replaced = builtins.listToAttrs (
    map
      (r: {
        name = pathOf r.oldDependency;
        value = r.newDependency;
      })
      replacements
  );

  # Whether a path refers to a replaced path, directly or through others.
  changes = builtins.mapAttrs
    (
      path: refs: replaced ? ${path} || builtins.any (ref: changes.${ref}) refs
    )
    graph;

  # What takes each path's place in the graft.
  grafted = builtins.mapAttrs
    (
      path: refs:
        if replaced ? ${path} then
          replaced.${path}
        else if changes.${path} then
          import ./graft-path.nix { inherit ldcache system storeDir; }
            {
              drv = withContext path;
              replacements = map
                (ref: {
                  oldDependency = ref;
                  newDependency = grafted.${ref};
                })
                (builtins.filter (ref: changes.${ref}) refs);
            }
        else
          withContext path
    )
    graph;
in
grafted.${pathOf drv}
