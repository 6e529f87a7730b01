# a dynamic attribute whose name is null is omitted
{ ${null} = 1; kept = 2; }
