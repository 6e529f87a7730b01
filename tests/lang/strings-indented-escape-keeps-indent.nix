# an escape at the start of a line is text, so it stops the indentation there
''
    ''${x}
  two
''
