[ (builtins.concatStringsSep ", " [ "a" "b" "c" ]) (builtins.concatStringsSep "-" [ ]) (builtins.concatStringsSep "" [ "x" "y" ]) (builtins.concatStringsSep "/" [ "one" ]) ]
