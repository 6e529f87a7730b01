builtins.length (builtins.genList (i: throw "elements are lazy") 4)
