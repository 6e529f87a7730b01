# // binds tighter than ==, looser than ++
{ l = [ 1 ] ++ [ 2 ]; } // { r = 3; }
