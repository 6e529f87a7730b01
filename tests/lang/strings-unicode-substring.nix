[ (builtins.substring 0 2 "éa") (builtins.substring 1 3 "abcdef") ]
