(builtins.import ./lib/value.nix).greeting
