builtins.seq (throw "seq forces its first argument") 1
