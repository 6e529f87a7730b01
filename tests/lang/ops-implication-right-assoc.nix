# -> is right associative: false -> (x -> y)
[ (false -> false -> false) (true -> false -> true) ]
