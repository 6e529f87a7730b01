(builtins.length (builtins.attrNames { a = 1; b = 2; })) * 10 + builtins.stringLength "abc"
