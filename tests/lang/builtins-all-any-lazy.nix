# all/any stop at the first deciding element
[ (builtins.any (x: x) [ true (throw "not reached") ]) (builtins.all (x: x) [ false (throw "not reached") ]) ]
