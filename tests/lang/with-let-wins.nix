# a let binding always wins over with, even an outer let
let x = "let"; in with { x = "with"; }; x
