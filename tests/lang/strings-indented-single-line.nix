''  single line  ''
