# text on the first line counts towards indentation
''  a
  b
''
