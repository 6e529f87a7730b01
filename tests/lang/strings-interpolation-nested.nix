let a = "A"; f = x: "<${x}>"; in "${f "${a}${f a}"}"
