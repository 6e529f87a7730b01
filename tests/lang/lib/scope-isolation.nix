# an imported file has its own scope
let x = "from the imported file"; in x
