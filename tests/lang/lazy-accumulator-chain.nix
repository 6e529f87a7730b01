# A lazy accumulator: each `acc + 1` needs the one before it, so forcing the
# last forces the whole chain. A failure at its far end is caught by tryEval
# and fails the same way when forced again. Chains of `//` and `++` too.
let
  loop = n: acc: if n == 0 then acc else loop (n - 1) (acc + 1);
  broken = loop 5000 (throw "the far end");
  sets = n: acc: if n == 0 then acc else sets (n - 1) (acc // { "k${toString n}" = n; });
  lists = n: acc: if n == 0 then acc else lists (n - 1) (acc ++ [ n ]);
in
{
  counted = loop 20000 (builtins.head [ 3 ]);
  first = (builtins.tryEval broken).success;
  again = (builtins.tryEval broken).success;
  keys = builtins.length (builtins.attrNames (sets 300 (builtins.head [ { } ])));
  items = builtins.elemAt (lists 300 (builtins.tail [ 0 ])) 299;
  compared = loop 3000 (builtins.head [ 1 ]) > loop 2000 (builtins.head [ 1 ]);
}
