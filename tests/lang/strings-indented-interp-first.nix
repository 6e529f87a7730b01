let x = "X"; in ''${x}
  second
''
