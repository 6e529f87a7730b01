builtins.fromTOML ''
  point = { x = 1, y = 2 }
  "quoted key" = "q"
  multi = """
  line1
  line2"""
  neg = -17
  hex = 0xff
''
