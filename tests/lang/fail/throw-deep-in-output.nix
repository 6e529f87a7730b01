# --strict forces every value in the output
{ a = [ 1 { b = throw "deep"; } ]; }
