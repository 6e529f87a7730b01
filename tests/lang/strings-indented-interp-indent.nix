# interpolations do not count as indentation, but the text before them does
let x = "X"; in ''
    ${x}
  ${x}
''
