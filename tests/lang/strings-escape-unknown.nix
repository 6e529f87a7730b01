# an unknown escape yields the character itself
[ "\a\b\z\q" "\u00e9" "\'" ]
