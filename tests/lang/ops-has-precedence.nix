# ? binds tighter than the arithmetic and logic operators
let s = { a = 1; }; in [ (s ? a && true) (!s ? b) (s ? a == true) ]
