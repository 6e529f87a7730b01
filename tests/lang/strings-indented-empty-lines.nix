# empty lines do not count towards the minimum indentation
''
    a

    b
''
