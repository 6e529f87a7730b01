# unary minus is 0 - x, so -0.0 is +0; a product can still give -0
[ (-0.0) (0.0 * (-1.0)) (builtins.toJSON (0.0 * (-1.0))) (toString (0.0 * (-1.0))) ]
