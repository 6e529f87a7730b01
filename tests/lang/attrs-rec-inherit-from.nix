let src = { p = 1; q = 2; }; in rec { inherit (src) p q; r = p + q; }
