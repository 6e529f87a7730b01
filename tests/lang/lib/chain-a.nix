# imports resolve relative to the importing file, not the caller
{ a = "a"; b = import ./sub/chain-b.nix; }
