''
  ''$ alone, ''$x, and $ plain
''
