builtins.functionArgs ({ required, optional ? 1, ... }: null)
