import ./lib/chain-a.nix
