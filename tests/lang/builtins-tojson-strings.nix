map builtins.toJSON [ "plain" "quote\"" "back\\" "tab\t" "nl\n" "cr\r" "é" "😀" "/" "$" "" ]
