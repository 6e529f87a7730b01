# true, false and null are ordinary names that can be shadowed
let true = false; in true
