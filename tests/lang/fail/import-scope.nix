# an imported file cannot see the importer's bindings
let fromImporter = 1; in import ../lib/uses-importer-binding.nix
