# the first matching pattern wins, and replaced text is not scanned again
[ (builtins.replaceStrings [ "a" "aa" ] [ "1" "2" ] "aaa") (builtins.replaceStrings [ "a" ] [ "aa" ] "aa") (builtins.replaceStrings [ ] [ ] "same") ]
