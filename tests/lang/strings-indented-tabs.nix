# tabs are not stripped as indentation
''
	tab-indented
  space-indented
''
