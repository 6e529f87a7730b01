let double = x: x * 2; twice = f: x: f (f x); in twice double 5
