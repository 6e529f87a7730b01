# `elem` forces the list first and the value only when the list has elements.
[
  (builtins.elem (throw "never forced") [ ])
  (builtins.tryEval (builtins.elem (throw "forced") [ 1 ])).success
  (builtins.tryEval (builtins.elem 1 (throw "the list first"))).success
  (builtins.elem 2 [ 1 2 3 ])
]
