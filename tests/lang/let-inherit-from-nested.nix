let cfg = { net = { port = 80; host = "h"; }; }; inherit (cfg.net) port host; in "${host}:${toString port}"
