# The tool as a release ships it: a statically linked `bin/ldcache` and its
# setup hook (`nix-support/setup-hook`, which finds the tool beside itself),
# packed as a NAR (nix/build-prebuilt.sh makes it). A fixed-output download
# needs no nixpkgs to evaluate, as the bootstrap tools do not, and its closure
# is itself: every stdenv's allowed requisites grow by this one path.
{ url, hash }:

let
  nar = import <nix/fetchurl.nix> {
    name = "ldcache-prebuilt";
    inherit url hash;
    unpack = true;
  };
in
nar // {
  meta = {
    mainProgram = "ldcache";
    platforms = [ "x86_64-linux" ];
  };
  stdenvRequisites = [ ];
}
