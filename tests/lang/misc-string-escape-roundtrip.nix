builtins.fromJSON (builtins.toJSON "a\"b\\c\nd\te\r")
