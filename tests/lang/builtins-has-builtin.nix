[ (builtins ? map) (builtins ? noSuchBuiltin) (builtins ? fromTOML) (builtins ? hashString) ]
