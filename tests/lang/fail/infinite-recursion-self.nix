let s = { a = s.a; }; in s.a
