# In a `rec` set, the attributes of `__overrides` replace the set's own (also where
# other attributes refer to them) and add the ones it does not have. A non-rec set
# keeps its `__overrides` as an ordinary attribute.
let
  r = rec {
    __overrides = { a = 2; c = b + 10; };
    a = 1;
    b = a * 100;
    ${"dyn" + "amic"} = a;
  };
  plain = { __overrides = { a = 2; }; a = 1; };
in
{ inherit r plain; }
