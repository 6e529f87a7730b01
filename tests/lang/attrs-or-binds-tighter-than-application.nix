let s = { }; f = x: "got ${x}"; in f s.a or "default"
