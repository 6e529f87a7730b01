[ (toString "already") (toString [ "a" [ "b" ] ]) (toString [ [ ] [ ] ]) (toString [ null ]) ]
