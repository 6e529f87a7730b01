builtins.elemAt [ (throw "first") "second" (abort "third") ] 1
