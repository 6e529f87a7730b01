# undefined variables are found before evaluation, even in branches never taken
if true then 1 else undefinedName
