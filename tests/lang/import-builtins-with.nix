import ./lib/uses-builtins.nix
