[ (builtins.match "[[:alpha:]]+" "abc") (builtins.match "[[:digit:]]+([[:space:]]*)" "12  ") (builtins.match "a|b" "b") (builtins.match "a{2,3}" "aaa") ]
