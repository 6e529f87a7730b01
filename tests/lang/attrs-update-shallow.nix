# // is shallow: the nested set on the right replaces the left one whole
{ a = { x = 1; y = 2; }; } // { a = { z = 3; }; }
