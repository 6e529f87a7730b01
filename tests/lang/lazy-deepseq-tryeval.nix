builtins.tryEval (builtins.deepSeq [ 1 (throw "deep") ] "x")
