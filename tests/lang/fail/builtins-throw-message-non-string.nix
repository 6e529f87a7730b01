# throw's message is coerced to a string; a set without __toString cannot be
throw { a = 1; }
