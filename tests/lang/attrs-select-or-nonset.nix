# `or` also catches selecting from something that is not a set
let s = { a = 5; }; in [ (s.a.b or "fallback") ]
