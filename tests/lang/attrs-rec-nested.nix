rec { a = { b = c; }; c = 5; d = a.b; }
