''
      six
  two
    four
''
