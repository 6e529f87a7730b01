# A tail-recursive loop with a lazy accumulator, as deep as Nix's default stack allows
# (bottle runs tail calls in a loop; see tests/lang.rs for a million calls).
let loop = n: acc: if n == 0 then acc else loop (n - 1) (acc + 1); in loop 50000 0
