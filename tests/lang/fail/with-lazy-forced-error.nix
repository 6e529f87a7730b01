# the with expression is evaluated once a variable is looked up in it
with (throw "with set fails"); someName
