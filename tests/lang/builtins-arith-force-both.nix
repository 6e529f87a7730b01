# `builtins.add`, `sub`, `mul` and `div` evaluate both arguments before checking their
# types: the `throw` on the right is reached (and caught) before the set on the left
# is found not to be a number.
map (f: (builtins.tryEval (f { } (throw "right"))).success) [
  builtins.add
  builtins.sub
  builtins.mul
  builtins.div
]
