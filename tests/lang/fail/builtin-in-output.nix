[ builtins.map ]
