map builtins.fromJSON [ "1" "-1" "1.5" "\"s\"" "true" "null" "[]" "{}" " 7 " ]
