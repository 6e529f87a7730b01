let f = s: with s; a * b; in f { a = 6; b = 7; }
