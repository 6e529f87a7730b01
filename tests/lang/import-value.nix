(import ./lib/value.nix).answer
