# JSON numbers with a fraction or exponent become floats
map builtins.typeOf (builtins.fromJSON "[1, 1.0, 1e2, -0, 12345678901]")
