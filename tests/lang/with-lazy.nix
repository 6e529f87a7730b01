# the with expression is only forced when a variable is looked up in it
with (throw "not needed"); 1
