''
  two quotes: '''
  four quotes: ''''''
  a single ' quote
''
