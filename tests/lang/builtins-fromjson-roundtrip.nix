let v = { list = [ 1 "two" { three = 3; } ]; flag = false; nothing = null; }; in builtins.fromJSON (builtins.toJSON v) == v
