# deepSeq over a million elements, each a suspended computation.
let xs = builtins.genList (i: i * 2) 1000000; in builtins.deepSeq xs (builtins.elemAt xs 999999)
