{ "a\"b" = 1; "tab\there" = 2; "new\nline" = 3; "é" = 4; }
