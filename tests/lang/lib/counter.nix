# imported twice, evaluated as the same value
{ list = builtins.genList (i: i) 3; }
