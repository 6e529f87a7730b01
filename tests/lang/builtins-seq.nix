[ (builtins.seq 1 2) (builtins.seq { a = throw "not deep"; } "shallow") (builtins.seq [ (throw "elements lazy") ] "ok") ]
