# Which side is evaluated first shows when both fail differently (a `throw` is caught,
# a type error is not). Nix reads `a <= b` as `!(b < a)` and `a > b` as `b < a`, so
# their right side goes first; `<` and `>=` start on the left. A set on the left of `+`
# is turned into a string before the right side is evaluated (for a list, see
# fail/operators-add-list-before-right.nix).
let
  caught = e: (builtins.tryEval e).success;
in
[
  (caught ((throw "left") < (1 + "right")))
  (caught ((1 + "left") <= (throw "right")))
  (caught ((1 + "left") > (throw "right")))
  (caught ((throw "left") >= (1 + "right")))
  (caught ({ __toString = _: throw "left"; } + (1 + "right")))
  (1 <= 2)
  (2 > 1)
]
