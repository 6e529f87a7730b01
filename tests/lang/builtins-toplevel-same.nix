[ (builtins.map == map) (builtins.typeOf builtins) (builtins.typeOf builtins.builtins) ]
