let s = { a = { b = 1; }; c = null; }; in [ (s ? a) (s ? b) (s ? a.b) (s ? a.c) (s ? c) (s ? "a") (s ? ${"c"}) ]
