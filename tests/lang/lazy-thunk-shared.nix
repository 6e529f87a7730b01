# a binding is evaluated once and shared
let big = builtins.genList (i: i) 1000; s = builtins.foldl' (a: b: a + b) 0 big; in [ s s (s == 499500) ]
