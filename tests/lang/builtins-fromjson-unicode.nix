builtins.fromJSON ''["\u00e9", "\ud83d\ude00", "\"quoted\"", "\\", "\/"]''
