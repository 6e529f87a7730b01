let x = "let"; in (x: x) "param"
