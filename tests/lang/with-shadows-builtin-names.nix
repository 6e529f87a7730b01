# top-level builtins are lexical bindings, so they win over `with`
with { map = "from-with"; toString = "also"; }; [ (builtins.isFunction map) (builtins.isFunction toString) ]
