''
  a''\nb''\tc''\\d''\re
  tab: ''\t!
''
