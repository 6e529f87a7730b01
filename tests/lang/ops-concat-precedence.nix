# ++ binds tighter than //, and + (on strings) tighter than ==
[ ([ 1 ] ++ [ 2 ] == [ 1 2 ]) ("a" + "b" == "ab") ({ a = 1; } // { b = 2; } == { a = 1; b = 2; }) ]
