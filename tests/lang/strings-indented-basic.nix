''
  first
  second
''
