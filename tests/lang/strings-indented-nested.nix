let inner = ''
    inner
  ''; in ''
  outer ${inner}done
''
