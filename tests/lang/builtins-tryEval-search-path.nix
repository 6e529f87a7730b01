# A `<name>` that is not in the search path is a catchable error, as in Nix.
let r = builtins.tryEval <bottle-conformance-no-such-search-path-entry>;
in [ r.success r.value (builtins.tryEval (import <bottle-conformance-missing/x.nix>)).success ]
