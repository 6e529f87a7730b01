# `split` finds matches like C++'s regex iterator (Nix's): an empty match right after
# a non-empty one counts too.
[
  (builtins.split "(a)*" "a")
  (builtins.split "a*" "baaac")
  (builtins.split "(x|y)*" "{x}")
  (builtins.split "" "ab")
  (builtins.split "b*" "")
]
