map builtins.splitVersion [ "1.2.3-pre.4" "5_6" "abc" "1..2" ]
