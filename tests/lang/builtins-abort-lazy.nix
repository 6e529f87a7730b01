let a = abort "never"; in { x = 1; y = [ a ]; }.x
