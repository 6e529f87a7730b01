# in a rec set, a dynamic name may use the set's own (static) attributes
rec { a = "x"; ${a} = 1; }
