# The old `let { …; body = …; }` form: the `body` attribute of a recursive set.
let {
  a = 1;
  b = a + 1;
  body = { inherit a b; c = let { x = b; body = x * 10; }; };
}
