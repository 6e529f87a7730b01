map builtins.typeOf [ (1 + 1.0) (builtins.fromJSON "1") ({ __functor = s: x: x; }) "" (builtins.tryEval 1) ]
