let a = b; b = a; in "cycle never forced"
