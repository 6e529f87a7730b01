# list elements are separate: application needs parentheses
let f = x: x; in [ (builtins.length [ f 1 (f 2) ]) (builtins.elemAt [ f 1 (f 2) ] 2) ]
