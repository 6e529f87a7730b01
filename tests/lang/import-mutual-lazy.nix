# a.nix and b.nix import each other, but lazily: each import finds the other file already evaluated
import ./lib/cycle-a.nix
