let a' = 1; a'' = 2; x_1' = 3; in a' + a'' + x_1'
