[ "${{ outPath = "out"; }}" "${{ __toString = self: "ts"; }}" (toString { outPath = { outPath = "nested"; }; }) ]
