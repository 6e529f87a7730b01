builtins.length [ (throw "a") (abort "b") 3 ]
