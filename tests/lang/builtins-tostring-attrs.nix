# toString of a set uses its __toString or outPath
[ (toString { __toString = self: "custom ${self.v}"; v = "V"; }) (toString { outPath = "/out"; }) ]
