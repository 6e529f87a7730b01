import ../lib/does-not-exist.nix
