# `~/x` is a path under $HOME, as in Nix (no path values in the output: those are
# machine-specific).
[
  (builtins.isPath ~/some/file.txt)
  (baseNameOf ~/some/file.txt)
  (baseNameOf ~/a/../b)
  (builtins.substring 0 1 (toString ~/x))
  (builtins.typeOf ~/.)
]
