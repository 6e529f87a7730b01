let v = "let"; in rec { v = "rec"; out = v; }.out
