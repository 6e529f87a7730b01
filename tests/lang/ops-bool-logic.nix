[ (true && false) (true || false) (false || false && true) (true || throw "short-circuit") (false && throw "short-circuit") ]
