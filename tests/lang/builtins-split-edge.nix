[ (builtins.split "a" "aaa") (builtins.split "(b)" "abc") (builtins.split "([0-9])?x" "x1x") ]
