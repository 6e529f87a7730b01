[ (false && abort "no") (true || abort "no") (if false then abort "no" else 1) ]
