[ (builtins.typeOf (1 + 1.0)) (builtins.typeOf (2 * 2)) (builtins.typeOf (4 / 2.0)) (builtins.isFloat (1 - 0.0)) ]
