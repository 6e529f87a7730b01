builtins.sort (a: b: "not a bool") [ 2 1 ]
