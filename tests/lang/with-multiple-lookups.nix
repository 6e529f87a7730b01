let s = { p = 1; q = 2; }; in with s; with { r = 3; }; p + q + r
