# a set with outPath prints as that string in JSON
[ { outPath = "/some/where"; other = 1; } (builtins.toJSON { outPath = "/x"; }) ]
