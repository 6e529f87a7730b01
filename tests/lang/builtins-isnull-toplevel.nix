[ (isNull null) (isNull 0) (builtins.isNull false) ]
