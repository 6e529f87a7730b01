[ (builtins.split "," "a,b,c") (builtins.split "(a)|(b)" "xaybz") (builtins.split "x" "") (builtins.split "[0-9]+" "a12b3") ]
