builtins.deepSeq { a = [ 1 { b = 2; } ]; } "forced fine"
