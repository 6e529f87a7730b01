builtins.elemAt (builtins.map (x: if x == 2 then throw "untouched" else x * 10) [ 1 2 3 ]) 2
