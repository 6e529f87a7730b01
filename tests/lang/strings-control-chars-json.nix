# control characters must be escaped in JSON output
[ "\t" "\n" "\r" "a\tb\nc\rd" "\"q\"" "back\\slash" "/slash" ]
