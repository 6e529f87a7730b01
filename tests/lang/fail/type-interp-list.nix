"value: ${[ "a" ]}"
