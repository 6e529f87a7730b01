[ (builtins.add 1 2) (builtins.sub 10 4) (builtins.mul 6 7) (builtins.div 7 2) (builtins.add 1.5 1) (builtins.div 1 2.0) ]
