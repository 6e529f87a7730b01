# `sort` forces every element before it compares (even in a one-element list), and
# `partition` forces each element before calling the predicate; `filter` does not.
[
  (builtins.tryEval (builtins.length (builtins.sort (a: b: true) [ (throw "forced") ]))).success
  (builtins.tryEval (builtins.length (builtins.partition (x: true) [ (throw "forced") ]).right)).success
  (builtins.tryEval (builtins.length (builtins.filter (x: true) [ (throw "not forced") ]))).success
  (builtins.sort (a: b: a < b) [ 3 1 2 ])
  (builtins.partition (x: x > 1) [ 3 1 2 ])
]
