let s = { x = 1; y = 2; z = 3; }; in { inherit (s) x y; w = 4; }
