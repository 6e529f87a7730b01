# a last line made only of spaces is dropped
''
  line
    ''
