builtins.sort builtins.lessThan [ 2.5 1 3 0.5 ]
