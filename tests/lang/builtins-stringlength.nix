map builtins.stringLength [ "" "a" "hello" "tab\t" ]
