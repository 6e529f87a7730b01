# deepSeq visits each set once, so a value that contains itself is fine (as in Nix).
let x = { a = x; b = [ x 1 ]; }; in builtins.deepSeq x "done"
