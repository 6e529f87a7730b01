let wrap = n: x: if n == 0 then x else wrap (n - 1) [ x ]; unwrap = n: x: if n == 0 then x else unwrap (n - 1) (builtins.head x); in unwrap 200 (wrap 200 "core")
