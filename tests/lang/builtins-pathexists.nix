[ (builtins.pathExists ./lib/data.txt) (builtins.pathExists ./lib/missing.txt) (builtins.pathExists ./lib) ]
