let v = "VAL"; in ''
  before ${v} after
    ${v}
''
