builtins.fromTOML "a = 1.0\nb = 1e3\nc = -0.0\nd = 3\ne = 1_000\n[t.u]\nv = 1\n[t]\nw = 2\n"
