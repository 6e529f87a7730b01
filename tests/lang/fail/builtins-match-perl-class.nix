# regular expressions are POSIX extended: there is no \d
builtins.match "\\d+" "12"
