''
  $${literal}
  $$
''
