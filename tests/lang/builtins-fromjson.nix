builtins.fromJSON ''{"a": [1, 2.5, "s", true, false, null], "b": {"c": "d"}, "e": -3, "f": 1e3, "u": "\u00e9\n"}''
