builtins.fromTOML ''
  name = "bottle"
  count = 3
  ratio = 0.5
  enabled = true
  list = [1, 2, 3]
  [section]
  key = "value"
  [section.sub]
  deep = 'literal'
  [[items]]
  id = 1
  [[items]]
  id = 2
''
