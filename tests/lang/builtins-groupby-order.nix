# groups keep the input order of their members
builtins.groupBy (x: if builtins.bitAnd x 1 == 0 then "even" else "odd") [ 5 2 9 4 1 8 ]
