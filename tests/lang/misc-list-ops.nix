let l = builtins.genList (i: i * 3) 10; in { sum = builtins.foldl' builtins.add 0 l; evens = builtins.filter (x: builtins.bitAnd x 1 == 0) l; rev = builtins.sort (a: b: a > b) l; }
