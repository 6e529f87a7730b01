[ (builtins.tryEval (builtins.tryEval (throw "inner")).value) ((builtins.tryEval [ (throw "lazy") ]).success) ]
