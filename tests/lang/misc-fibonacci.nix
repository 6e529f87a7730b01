let fib = n: if n < 2 then n else fib (n - 1) + fib (n - 2); in map fib [ 0 1 2 10 20 ]
