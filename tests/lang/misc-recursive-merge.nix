let
  merge = a: b: a // builtins.mapAttrs (n: v: if builtins.isAttrs v && builtins.isAttrs (a.${n} or null) then merge a.${n} v else v) b;
in merge { x = { y = 1; z = 2; }; w = 0; } { x = { y = 10; q = 3; }; }
