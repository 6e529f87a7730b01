map dirOf [ "" "/" "a/" "//a" "a//b" "/a/" ]
