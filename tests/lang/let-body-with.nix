let s = { v = 1; }; in with s; let w = v + 1; in [ v w ]
