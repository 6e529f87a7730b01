builtins.concatStringsSep "," (map toString [ 1 2.5 true null "s" [ 1 2 ] ])
