rec { a = "name"; ${"b"} = a; }
