[ (import ./lib/function.nix { name = "bottle"; }) (import ./lib/function.nix { name = "nix"; suffix = "?"; }) ]
