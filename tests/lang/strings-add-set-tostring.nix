# A set with `__toString` (or `outPath`) on the left of `+` makes a string, as in Nix.
[
  ({ __toString = self: "a"; } + "b")
  ({ __toString = self: "n=${toString self.n}"; n = 1; } + "")
  ({ outPath = "/x"; } + "/y")
  ("a" + { __toString = _: "b"; })
]
