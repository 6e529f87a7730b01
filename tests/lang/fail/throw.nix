throw "an error"
