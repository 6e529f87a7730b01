let x = "only"; in ''
  ${x}''
