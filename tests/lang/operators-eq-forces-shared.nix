# `==` forces each element before the same element on both sides counts as equal, and
# compares a list or set with itself element by element: an error inside is reached.
let
  caught = e: !(builtins.tryEval e).success;
  l = [ (throw "x") ];
  s = { a = throw "x"; };
  x = throw "x";
  f = y: y;
  inner = { a = throw "not reached: the same set is not compared inside"; };
in
[
  (caught (l == l))
  (caught (s == s))
  (caught ([ x ] == [ x ]))
  ([ inner ] == [ inner ])
  ([ f ] == [ f ])
  ([ [ f ] ] == [ [ f ] ])
  ({ a = f; } == { a = f; })
]
