let s = "Hello, World"; in [ (builtins.substring 7 5 s) (builtins.stringLength s) (builtins.replaceStrings [ "World" ] [ "Nix" ] s) (builtins.split ", " s) ]
