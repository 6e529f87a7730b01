# `?` forces the sets along the path but not the value of the last attribute.
[
  ({ a = throw "not forced"; } ? a)
  ({ inherit ({ }) c; } ? c)
  ({ a.b = abort "not forced"; } ? a.b)
  (builtins.tryEval ({ a = throw "forced: it is on the way"; } ? a.b)).success
]
