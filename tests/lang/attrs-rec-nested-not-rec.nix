# only the outer set is recursive
rec { a = 1; b = { a = 2; c = a; }; }.b.c
