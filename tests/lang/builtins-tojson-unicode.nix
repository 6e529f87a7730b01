builtins.toJSON { "ключ" = "日本 😀"; }
