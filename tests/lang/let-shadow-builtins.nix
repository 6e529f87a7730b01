let builtins = { length = _: 99; }; in builtins.length [ ]
