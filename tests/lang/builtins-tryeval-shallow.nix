# tryEval forces only to weak head normal form
(builtins.tryEval { a = throw "inside"; }).success
