builtins.fromTOML "x = [[1, 2], [\"a\"]]\ny = []\n"
