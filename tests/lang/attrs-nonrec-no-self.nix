# a plain set's values do not see its own attributes
let a = "outer"; in { a = "inner"; b = a; }
