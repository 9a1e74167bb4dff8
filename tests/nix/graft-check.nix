# The graft on real packages (the flake's checks.graft): hello, curl and git
# from stock nixpkgs (the binary cache's builds), grafted onto the patched
# glibc by `graft` (flake.nix's lib.graft). Each grafted program starts with
# zero failing library lookups and prints what the original prints; every ELF
# file of the grafted closures carries a current note (`ldcache audit`). Needs
# nixpkgs and a binary cache; it builds glibc once.
{ pkgs
, graft
, ldcache
,
}:

let
  inherit (pkgs) lib;

  programs = [
    {
      drv = pkgs.hello;
      command = "bin/hello --version";
    }
    {
      drv = pkgs.curl;
      command = "bin/curl --version";
    }
    {
      drv = pkgs.git;
      command = "bin/git --version";
    }
  ];

  grafted = map (p: p // { graft = graft { inherit pkgs; inherit (p) drv; }; }) programs;
in
pkgs.runCommand "ldcache-graft-check"
{
  nativeBuildInputs = [ pkgs.strace ];
  closures = pkgs.closureInfo { rootPaths = map (p: p.graft) grafted; };
}
  ''
    source ${./failed-lookups.sh}
    mkdir -p $out
    ${lib.concatMapStrings (p: ''
      n=$(failures ${p.graft}/${p.command})
      echo "grafted ${p.drv.name}: $n failing library lookups" | tee -a $out/report
      [ "$n" -eq 0 ] || { cat failed.log >&2; exit 1; }
      [ "$(${p.graft}/${p.command})" = "$(${p.drv}/${p.command})" ]
    '') grafted}
    ${ldcache}/bin/ldcache audit --json $(cat $closures/store-paths) > $out/audit.json
    python3 -c 'import json, sys; t = json.load(open(sys.argv[1]))["total"]; sys.exit(t["with_notes"] != 0)' $out/audit.json
  ''
