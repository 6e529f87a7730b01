# A version component that is all digits but too long for a C `int` compares as text
# (Nix's rule), so it sorts before a component that starts with a letter.
[
  (builtins.compareVersions "a" "100000000000000000000")
  (builtins.compareVersions "100000000000000000000" "a")
  (builtins.compareVersions "1.2147483647" "1.2147483648")
  (builtins.compareVersions "1.99999999999" "1.3")
  (builtins.compareVersions "1.10" "1.9")
  (builtins.compareVersions "1.007" "1.7")
]
