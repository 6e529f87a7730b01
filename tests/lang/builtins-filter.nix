builtins.filter (x: builtins.isInt x && x > 2) [ 1 5 "x" 3 2 10 ]
