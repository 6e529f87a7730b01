let k = "x"; s = { x.y = 1; }; in [ (s ? ${k}.y) (s.${k}.z or "no z") ]
