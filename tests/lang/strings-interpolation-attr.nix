let s = { x = { y = "deep"; }; }; in "value: ${s.x.y}"
