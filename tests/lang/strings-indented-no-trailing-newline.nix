''
  no final newline''
