# also in a function that is never called
let f = x: y; in 1
