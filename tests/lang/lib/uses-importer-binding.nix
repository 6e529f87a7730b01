# needs a binding from its importer, which it cannot see
fromImporter + 1
