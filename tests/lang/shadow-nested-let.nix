let a = 1; b = let a = 2; in a; in [ a b ]
