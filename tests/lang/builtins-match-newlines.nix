# POSIX regular expressions: `.` also matches a newline
[ (builtins.match "." "\n") (builtins.match "(.*)\n(.*)" "a\nb") (builtins.match "a.b" "a\nb") (builtins.split "." "a\nb") ]
