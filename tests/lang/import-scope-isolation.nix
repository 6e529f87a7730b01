let x = "from the importer"; in [ x (import ./lib/scope-isolation.nix) ]
