# `map`, `genList` and `mapAttrs` do not force their function (only applying it to an
# element does), and `genericClosure` forces `operator` only once it has an element.
[
  (map 1 [ ])
  (builtins.length (map (throw "not forced") [ 1 2 ]))
  (builtins.genList (abort "not forced") 0)
  (builtins.length (builtins.genList 1 2))
  (builtins.attrNames (builtins.mapAttrs (throw "not forced") { a = 1; b = 2; }))
  (builtins.genericClosure { startSet = [ ]; operator = "not a function"; })
  (builtins.tryEval (builtins.elemAt (map (throw "forced now") [ 1 ]) 0)).success
  (map (x: x * 2) [ 1 2 ])
]
