[ (builtins.all (x: x > 0) [ 1 2 ]) (builtins.all (x: x > 0) [ ]) (builtins.any (x: x > 1) [ 0 1 ]) (builtins.any (x: x) [ ]) (builtins.any (x: x == 2) [ 1 2 ]) ]
