let s = { a = { b = { c = 42; }; }; "x y" = 1; }; in [ s.a.b.c s."x y" s.${"a"}.b.c ]
