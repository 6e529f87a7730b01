(if true then (x: x * 2) else (x: x)) 21
