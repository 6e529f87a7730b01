[ (builtins.match "a(b)(c)?" "ab") (builtins.match "([a-z]+)-([0-9]+)" "foo-42") (builtins.match "x" "y") (builtins.match ".*" "") (builtins.match "a" "ab") ]
