{ a = 1; b = (import ./cycle-b.nix).b; }
