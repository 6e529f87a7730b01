# trace prints to stderr and returns its second argument
builtins.trace "this goes to stderr" (builtins.trace { a = 1; } 42)
