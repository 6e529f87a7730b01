# `-` may appear inside identifiers, so subtraction needs spaces
let a-b = 1; a = 5; b = 2; in [ a-b (a - b) (a -b) ]
