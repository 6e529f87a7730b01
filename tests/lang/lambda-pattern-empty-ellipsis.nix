({ ... }: "any set") { x = 1; }
