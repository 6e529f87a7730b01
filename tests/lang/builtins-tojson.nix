builtins.toJSON { b = [ 1 2.5 "s" true null ]; a = { nested = "x"; }; "k\"ey" = "v\n"; }
