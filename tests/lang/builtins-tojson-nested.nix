builtins.toJSON { list = [ [ ] [ { } ] [ [ 1 ] ] ]; set = { "" = null; "z" = { y = { x = 1.5; }; }; }; }
