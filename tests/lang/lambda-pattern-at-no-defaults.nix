# the @-binding holds the argument as passed, without defaults filled in
(args@{ a ? 1, b }: [ (args ? a) a b ]) { b = 2; }
