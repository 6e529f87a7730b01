# `${"a"}` (a string without interpolation) is the static name `a`, so it merges
# with other definitions of `a` and its nested attributes like any static name.
{
  a.b = 1;
  ${"a"}.c = 2;
  x = { y = 1; };
  ${"x"} = { z = 2; };
  ${"p"}.q = 1;
  ${"p"}.r = 2;
  s.${"t"}.u = 1;
  s.t.v = 2;
  sel = { m.n = 3; }.${"m"}.n;
  has = { m.n = 3; } ? ${"m"}.n;
}
