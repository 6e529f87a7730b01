builtins.noSuchBuiltin 1
