''

  after blank
''
