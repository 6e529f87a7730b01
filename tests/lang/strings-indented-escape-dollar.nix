''
  ''${not interpolated}
  $x and $${y}
''
