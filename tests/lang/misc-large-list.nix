let l = builtins.genList (i: i) 10000; in [ (builtins.length l) (builtins.elemAt l 9999) (builtins.foldl' builtins.add 0 l) ]
