[ (builtins.functionArgs builtins.map) (builtins.functionArgs (a@{ x ? 1 }: x)) ]
