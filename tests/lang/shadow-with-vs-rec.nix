# rec bindings are lexical, so they beat with
rec { a = "rec"; b = with { a = "with"; }; a; }.b
