# the @ name is in scope for defaults
(args@{ a ? builtins.length (builtins.attrNames args), b }: a) { b = 1; }
