# Comparisons and arithmetic on numbers already computed, passed as arguments.
let
  f = a: b: [ (a < b) (a <= b) (a > b) (a >= b) (a == b) (a != b) (a + b) (a - b) (a * b) (a / b) (-a) ];
  x = 0.5; i = 3; t = true;
in f x i ++ f i x ++ f i i ++ [ (builtins.head [ (!t) ]) (builtins.head [ (t == false) ]) (builtins.head [ (i / 2) ]) ]
