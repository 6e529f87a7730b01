# Arithmetic that would fail (overflow, division by zero) stays an unforced error when
# its value is never needed, even where bottle computes arithmetic eagerly.
let f = a: b: c: d: "ok"; n = 9223372036854775807; z = 0; in f (n + 1) (1 / z) (-(n + 1 - 1) * 2) (1.0 / 0)
