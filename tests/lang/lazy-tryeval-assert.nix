(builtins.tryEval (assert 1 == 2; "never")).success
