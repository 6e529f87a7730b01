//! Arithmetic and bitwise builtins.

use super::Builtin;
use crate::eval::{EvalResult, Evaluator, Thunk, Value};
use crate::syntax::ast::BinaryOp;
use crate::syntax::Span;

pub const BUILTINS: &[Builtin] = &[
    Builtin {
        name: "add",
        arity: 2,
        run: add,
    },
    Builtin {
        name: "sub",
        arity: 2,
        run: sub,
    },
    Builtin {
        name: "mul",
        arity: 2,
        run: mul,
    },
    Builtin {
        name: "div",
        arity: 2,
        run: div,
    },
    Builtin {
        name: "lessThan",
        arity: 2,
        run: less_than,
    },
    Builtin {
        name: "bitAnd",
        arity: 2,
        run: bit_and,
    },
    Builtin {
        name: "bitOr",
        arity: 2,
        run: bit_or,
    },
    Builtin {
        name: "bitXor",
        arity: 2,
        run: bit_xor,
    },
    Builtin {
        name: "floor",
        arity: 1,
        run: floor,
    },
    Builtin {
        name: "ceil",
        arity: 1,
        run: ceil,
    },
];

fn arith(ev: &mut Evaluator, op: BinaryOp, args: &[Thunk], span: Span) -> EvalResult<Value> {
    // As in Nix: both arguments are evaluated before either is checked (`div` checks
    // its divisor first).
    ev.force(&args[0])?;
    ev.force(&args[1])?;
    if op == BinaryOp::Div {
        ev.force_number(&args[1], span)?;
    }
    let a = ev.force_number(&args[0], span)?;
    let b = ev.force_number(&args[1], span)?;
    ev.operate(op, a, b, span, span, span)
}

fn add(ev: &mut Evaluator, args: &[Thunk], span: Span) -> EvalResult<Value> {
    arith(ev, BinaryOp::Add, args, span)
}

fn sub(ev: &mut Evaluator, args: &[Thunk], span: Span) -> EvalResult<Value> {
    arith(ev, BinaryOp::Sub, args, span)
}

fn mul(ev: &mut Evaluator, args: &[Thunk], span: Span) -> EvalResult<Value> {
    arith(ev, BinaryOp::Mul, args, span)
}

fn div(ev: &mut Evaluator, args: &[Thunk], span: Span) -> EvalResult<Value> {
    arith(ev, BinaryOp::Div, args, span)
}

fn less_than(ev: &mut Evaluator, args: &[Thunk], span: Span) -> EvalResult<Value> {
    let a = ev.force(&args[0])?;
    let b = ev.force(&args[1])?;
    Ok(Value::Bool(ev.less_than(&a, &b, span)?))
}

fn bits(
    ev: &mut Evaluator,
    args: &[Thunk],
    span: Span,
    f: fn(i64, i64) -> i64,
) -> EvalResult<Value> {
    let a = ev.force_int(&args[0], span)?;
    let b = ev.force_int(&args[1], span)?;
    Ok(Value::Int(f(a, b)))
}

fn bit_and(ev: &mut Evaluator, args: &[Thunk], span: Span) -> EvalResult<Value> {
    bits(ev, args, span, |a, b| a & b)
}

fn bit_or(ev: &mut Evaluator, args: &[Thunk], span: Span) -> EvalResult<Value> {
    bits(ev, args, span, |a, b| a | b)
}

fn bit_xor(ev: &mut Evaluator, args: &[Thunk], span: Span) -> EvalResult<Value> {
    bits(ev, args, span, |a, b| a ^ b)
}

fn round(ev: &mut Evaluator, args: &[Thunk], span: Span, f: fn(f64) -> f64) -> EvalResult<Value> {
    match ev.force_number(&args[0], span)? {
        Value::Int(n) => Ok(Value::Int(n)),
        Value::Float(x) => {
            let r = f(x);
            // -2^63 ..= 2^63 (exclusive): what an i64 holds. Nix 2.8 gives an undefined
            // value outside it; like every other integer overflow, that is an error here.
            if r.is_nan() || !(-9.223_372_036_854_776e18..9.223_372_036_854_776e18).contains(&r) {
                return Err(crate::eval::EvalError::fatal(
                    format!("integer overflow: {x} does not fit in a 64-bit integer"),
                    span,
                ));
            }
            Ok(Value::Int(r as i64))
        }
        _ => unreachable!("force_number: returns only numbers"),
    }
}

fn floor(ev: &mut Evaluator, args: &[Thunk], span: Span) -> EvalResult<Value> {
    round(ev, args, span, f64::floor)
}

fn ceil(ev: &mut Evaluator, args: &[Thunk], span: Span) -> EvalResult<Value> {
    round(ev, args, span, f64::ceil)
}
