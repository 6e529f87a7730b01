# defaults see the other formals, not an outer binding of the same name
let b = "outer"; in ({ a ? b, b ? "formal" }: a) { }
