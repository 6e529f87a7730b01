({ a ? abort "default unused" }: "fine") { a = 1; }
