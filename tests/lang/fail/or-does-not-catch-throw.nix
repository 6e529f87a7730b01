# `or` handles a missing attribute, not an error in its value
{ a = throw "boom"; }.a or 1
