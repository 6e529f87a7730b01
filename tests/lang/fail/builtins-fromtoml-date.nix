# Nix's fromTOML does not support dates and times
builtins.fromTOML "t = 1979-05-27T07:32:00Z"
