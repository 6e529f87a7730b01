let name = "world"; n = "4"; in "hello ${name}, ${n}${"2"} ${"nested ${name}"}"
