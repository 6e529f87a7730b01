[ (builtins.tryEval 1) (builtins.tryEval (throw "caught")) (builtins.tryEval (assert false; 1)) (builtins.tryEval "fine") ]
