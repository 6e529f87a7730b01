# control characters other than \t \n \r print as \u00XX escapes
let s = builtins.fromJSON ''"\u0001\u001f\u007f\b\f"''; in [ s (builtins.toJSON s) (builtins.stringLength s) ]
