[ (builtins.tryEval (builtins.deepSeq { a = throw "inside"; } 1)) (builtins.tryEval (builtins.deepSeq [ 1 2 ] 3)) ]
