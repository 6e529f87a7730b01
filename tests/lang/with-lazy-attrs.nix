with { a = throw "lazy"; b = 2; }; b
