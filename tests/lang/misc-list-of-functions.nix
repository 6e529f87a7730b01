map (f: f 3) [ (x: x + 1) (x: x * x) builtins.toString (builtins.add 10) ]
