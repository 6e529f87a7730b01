with builtins; map (x: x * 2) (filter (x: x > 1) [ 1 2 3 ])
