# a set with __functor can be called like a function
let counter = { n = 1; __functor = self: x: x + self.n; }; in [ (counter 41) (builtins.isFunction counter) ]
