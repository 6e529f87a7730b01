builtins.length (map (x: throw "lazy element") [ 1 2 3 ])
