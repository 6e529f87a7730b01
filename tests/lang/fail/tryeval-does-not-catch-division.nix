# tryEval catches only throw and assert, not other evaluation errors
builtins.tryEval (1 / 0)
