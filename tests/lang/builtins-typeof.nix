map builtins.typeOf [ { } [ ] (x: x) "s" 1 1.5 true null ./regen builtins.map (builtins.map (x: x)) ]
