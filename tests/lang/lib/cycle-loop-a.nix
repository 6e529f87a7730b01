import ./cycle-loop-b.nix
