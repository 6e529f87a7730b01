# comparison operators do not chain
1 < 2 < 3
