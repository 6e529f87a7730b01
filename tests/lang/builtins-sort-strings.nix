builtins.sort builtins.lessThan [ "b" "B" "a" "" "ab" "aa" "é" "Z" ]
