# The old `let { … }` form without a `body` attribute.
let { a = 1; }
