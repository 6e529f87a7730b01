let a = "let"; in ({ a ? "default" }: a) { }
