[ (builtins.toJSON (1.0 / 3 * 3)) (builtins.toJSON (builtins.fromJSON "{\"a\":1.0}")) ]
