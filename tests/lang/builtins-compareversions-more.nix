map (p: builtins.compareVersions (builtins.elemAt p 0) (builtins.elemAt p 1))
  [ [ "1.2.3" "1.2.3" ] [ "1.2" "1.2.0" ] [ "1.2a" "1.2" ] [ "1.2pre" "1.2" ] [ "10" "9" ] [ "1.b" "1.a" ] ]
