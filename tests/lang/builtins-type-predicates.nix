map (v: [ (builtins.isAttrs v) (builtins.isList v) (builtins.isFunction v) (builtins.isString v) (builtins.isInt v) (builtins.isFloat v) (builtins.isBool v) (builtins.isNull v) (builtins.isPath v) ])
  [ { } [ ] (x: x) "s" 1 1.5 true null ./regen builtins.map ]
