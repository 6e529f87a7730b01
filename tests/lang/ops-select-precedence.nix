let s = { f = x: x + 1; l = [ 10 ]; }; in [ (s.f 1) (builtins.head s.l) ]
