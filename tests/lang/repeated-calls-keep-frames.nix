# A builtin that calls one function many times (sort, filter, foldl', …)
# may reuse a call's frames for the next, but only when nothing kept them:
# here closures, lazy attributes and `let` bindings keep them.
let
  adders = builtins.foldl' (acc: x: acc ++ [ (y: x + y) ]) [ ] [ 1 2 3 ];
  chain = builtins.foldl' (acc: x: { label = "n${toString x}"; prev = acc; }) null [ 1 2 3 ];
  sorted = builtins.sort (a: b: let ka = a.k; kb = b.k; in ka < kb) [
    { k = 3; }
    { k = 1; }
    { k = 2; }
  ];
  thunks = builtins.foldl' (acc: x: acc ++ [ (x * 10 + builtins.length acc) ]) [ ] [ 1 2 3 ];
in
{
  applied = map (f: f 10) adders;
  labels = [ chain.label chain.prev.label chain.prev.prev.label ];
  keys = map (s: s.k) sorted;
  inherit thunks;
  numbers = builtins.sort (a: b: a > b) [ 5 3 9 1 7 ];
  kept = builtins.filter (x: x > 1) [ 1 2 3 ];
  parts = builtins.partition (x: x / 2 * 2 == x) [ 1 2 3 4 ];
  every = builtins.all (x: x > 0) [ 1 2 3 ];
  some = builtins.any (x: x == 2) [ 1 2 3 ];
  curried = builtins.foldl' (acc: x: acc + x) 0 [ 1 2 3 4 ];
}
