[ (if true then "yes" else "no") (if false then "yes" else "no") (if 1 < 2 then 1 else 2) ]
