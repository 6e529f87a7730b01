# Two sets that each contain themselves (through `rec`) compare forever: an error that
# ends the evaluation (Nix: stack overflow), not a crash.
let
  s = rec { a.c = 1; c = a; a.d = c; };
  t = rec { a.c = 1; c = a; a.d = c; };
in
builtins.tryEval (s == t)
