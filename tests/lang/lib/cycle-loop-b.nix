import ./cycle-loop-a.nix
