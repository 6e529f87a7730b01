''
  C:\path\n is literal
  \$ stays
''
