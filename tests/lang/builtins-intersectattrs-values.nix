# values come from the second set
builtins.intersectAttrs { a = "first"; c = "first"; } { a = "second"; b = "second"; }
