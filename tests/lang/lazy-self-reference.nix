# a value may refer to itself lazily (an infinite structure, only partly forced)
let xs = { head = 1; tail = xs; }; in xs.tail.tail.tail.head
