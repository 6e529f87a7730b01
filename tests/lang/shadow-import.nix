let import = x: "not the builtin"; in import ./lib/value.nix
