# `or` is also usable as an identifier in some positions
let s = { }; in s.missing or "default"
