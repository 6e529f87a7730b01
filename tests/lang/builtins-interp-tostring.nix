let s = { __toString = self: "S"; }; in "interp ${s}"
