(x: 5) (throw "never forced")
