# lines holding only an interpolation still count: their leading spaces set the indentation
let a = "A"; b = "B"; in ''
      ${a}
    ${b}
''
