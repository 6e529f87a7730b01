let items = [ "a" "b" "c" ]; in builtins.concatStringsSep "\n" (map (x: "item ${x}") items) + "\n"
