map baseNameOf [ "" "/" "a/" "//a" "a//b" "a/b/" ]
