# foldl' does not force its initial accumulator when the list is not empty:
# it is passed to the first call as it is (and forced only if the list is empty).
let
  ignoreAcc = builtins.foldl' (acc: x: x) (throw "the initial accumulator is not forced") [ 1 2 3 ];
  keepAcc = builtins.tryEval (builtins.foldl' (acc: x: acc) (throw "forced at the end") [ 1 ]);
  empty = builtins.tryEval (builtins.foldl' (acc: x: x) (throw "forced: the list is empty") [ ]);
  firstSeesIt = builtins.foldl' (acc: x: if x == 1 then 10 else acc + x) (abort "never") [ 1 2 ];
in
[ ignoreAcc keepAcc empty firstSeesIt ]
