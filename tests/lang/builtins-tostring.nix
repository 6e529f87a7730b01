[ (toString 1) (toString "s") (toString true) (toString false) (toString null) (toString [ 1 "a" [ 2 ] ]) (toString [ ]) (toString 1.5) (toString (-3)) ]
