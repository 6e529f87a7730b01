# inherit (e) does not force attributes that are never used
let s = { ok = 1; bad = throw "never"; }; in { inherit (s) ok bad; }.ok
