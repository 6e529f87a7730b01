# lines with only spaces shorter than the indent
''
    a
  
    b
''
