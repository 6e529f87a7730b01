{ answer = 42; greeting = "hi"; }
