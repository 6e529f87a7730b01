{ b = "b"; c = import ../chain-c.nix; }
