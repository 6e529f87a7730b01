# A list on the left of `+` is an error before the right side is evaluated, so the
# `throw` there is never reached and `tryEval` has nothing to catch.
builtins.tryEval ([ ] + (throw "right, never reached"))
