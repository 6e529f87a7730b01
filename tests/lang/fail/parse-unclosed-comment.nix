/* never closed
1
