[ (baseNameOf "/a/b/c.txt") (baseNameOf "/a/b/") (baseNameOf "file") (dirOf "/a/b/c") (dirOf "a/b") (dirOf "/a") (dirOf "file") (builtins.baseNameOf ./lib/data.txt) ]
