# inherit without a source also finds names provided by with
with { a = "from-with"; }; let inherit a; in a
