({ }: "empty pattern") { }
