# an interpolated value's newlines are not re-indented
let multi = "a\n  b\nc"; in ''
  start
    ${multi}
  end
''
