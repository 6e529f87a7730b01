# functions are never equal, except the same value inside a list or set (pointer equality)
let f = x: x; in [ (f == f) ([ f ] == [ f ]) ({ inherit f; } == { inherit f; }) ]
