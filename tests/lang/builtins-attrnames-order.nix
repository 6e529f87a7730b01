builtins.attrNames { b = 1; a = 2; C = 3; "1" = 4; aa = 5; "_" = 6; }
