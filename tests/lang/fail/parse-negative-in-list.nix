# inside a list, `-1` after an element is a binary minus with no left side
[ 1 -1 ]
