(args@{ x, ... }: x) { y = 1; }
