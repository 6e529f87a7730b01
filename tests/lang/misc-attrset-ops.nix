let cfg = { services = { web = { port = 80; }; db = { port = 5432; }; }; }; in builtins.mapAttrs (name: s: s.port + 1) cfg.services
