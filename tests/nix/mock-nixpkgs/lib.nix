# The part of nixpkgs' lib that nix/, flake.nix and tests/nix/closure.nix
# use, written from its documented behaviour, for evaluation without nixpkgs.
{
  fix =
    f:
    let
      x = f x;
    in
    x;

  optionalAttrs = condition: attrs: if condition then attrs else { };
  optionals = condition: list: if condition then list else [ ];
  optionalString = condition: string: if condition then string else "";
  genAttrs =
    names: f:
    builtins.listToAttrs (
      map
        (name: {
          inherit name;
          value = f name;
        })
        names
    );
  nameValuePair = name: value: { inherit name value; };
  inherit (builtins) listToAttrs attrNames concatStringsSep;
  escapeShellArg = arg: "'${builtins.replaceStrings [ "'" ] [ "'\\''" ] arg}'";
  warn = message: builtins.trace "warning: ${message}";
  range = first: last: builtins.genList (i: first + i) (last - first + 1);
  concatMapStrings = f: list: builtins.concatStringsSep "" (map f list);
  concatMapStringsSep = sep: f: list: builtins.concatStringsSep sep (map f list);

  versions.majorMinor =
    version:
    let
      parts = builtins.splitVersion version;
    in
    "${builtins.elemAt parts 0}.${builtins.elemAt parts 1}";

  importTOML = file: builtins.fromTOML (builtins.readFile file);
  getExe = drv: "${drv}/bin/${drv.meta.mainProgram}";

  # A file set is the paths it includes and those it excludes from them; a
  # source is its root, with the file set kept for the tests to look at.
  fileset = {
    unions = paths: {
      include = paths;
      exclude = [ ];
    };
    maybeMissing = path: {
      include = [ path ];
      exclude = [ ];
    };
    difference = set: minus: set // { exclude = set.exclude ++ minus.include; };
    toSource =
      { root, fileset }:
      {
        outPath = toString root;
        inherit fileset;
      };
  };

  licenses.mit = {
    spdxId = "MIT";
  };
  platforms.linux = [
    "x86_64-linux"
    "aarch64-linux"
  ];
}
