# The overlay, with the tool built from source (see ./make-overlay.nix).
import ./make-overlay.nix { }
