# stringLength counts bytes, not characters
[ (builtins.stringLength "é") (builtins.stringLength "日本") (builtins.stringLength "😀") ]
