[ (builtins.match "[a-z]+" "abc") (builtins.match "[a-z]+" "abc1") (builtins.match "(.*)\\.nix" "default.nix") (builtins.match "([^=]+)=(.*)" "key=va=lue") ]
