let defaults = { cpus = 2; memory = 1024; net = { dns = true; }; }; user = { memory = 4096; net = { proxy = "x"; }; }; in defaults // user
