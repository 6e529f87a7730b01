# foldl' forces the accumulator
builtins.foldl' (acc: x: throw "forced") 0 [ 1 ]
