({ a ? 1, b ? a + 1, c ? a + b }: [ a b c ]) { a = 10; }
