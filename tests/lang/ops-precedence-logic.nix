# ! binds tighter than ==, == tighter than &&, && tighter than ||, || tighter than ->
[ (!false == true) (true || false && false) (false && true || true) (false -> true || false) (true -> false || true) ]
