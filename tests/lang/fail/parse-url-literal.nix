# bottle has no URL literals; Nix parses this as a string, so it is here only for the error below
builtins.fromJSON https://example.com
