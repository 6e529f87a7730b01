# The name ends at the first `-` followed by something that is not a letter.
map builtins.parseDrvName [
  "hello-2.10"
  "nix-2.8pre-1"
  "a-b-c"
  "a-b-1"
  "python3.10-setuptools-65.3.0"
  "x"
  "x-"
  "-1"
  "foo-_bar"
  ""
]
