{ b = (import ./cycle-a.nix).a + 1; }
