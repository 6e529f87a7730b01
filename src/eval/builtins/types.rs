//! Type predicates, forcing, errors and tracing.

use super::Builtin;
use crate::eval::{Attr, Attrs, ErrorKind, EvalError, EvalResult, Evaluator, Thunk, Value};
use crate::syntax::Span;

pub const BUILTINS: &[Builtin] = &[
    Builtin {
        name: "isAttrs",
        arity: 1,
        run: |ev, a, _| Ok(Value::Bool(matches!(ev.force(&a[0])?, Value::Attrs(_)))),
    },
    Builtin {
        name: "isList",
        arity: 1,
        run: |ev, a, _| Ok(Value::Bool(matches!(ev.force(&a[0])?, Value::List(_)))),
    },
    Builtin {
        name: "isFunction",
        arity: 1,
        run: |ev, a, _| Ok(Value::Bool(ev.force(&a[0])?.is_function())),
    },
    Builtin {
        name: "isString",
        arity: 1,
        run: |ev, a, _| Ok(Value::Bool(matches!(ev.force(&a[0])?, Value::String(_)))),
    },
    Builtin {
        name: "isInt",
        arity: 1,
        run: |ev, a, _| Ok(Value::Bool(matches!(ev.force(&a[0])?, Value::Int(_)))),
    },
    Builtin {
        name: "isFloat",
        arity: 1,
        run: |ev, a, _| Ok(Value::Bool(matches!(ev.force(&a[0])?, Value::Float(_)))),
    },
    Builtin {
        name: "isBool",
        arity: 1,
        run: |ev, a, _| Ok(Value::Bool(matches!(ev.force(&a[0])?, Value::Bool(_)))),
    },
    Builtin {
        name: "isPath",
        arity: 1,
        run: |ev, a, _| Ok(Value::Bool(matches!(ev.force(&a[0])?, Value::Path(_)))),
    },
    Builtin {
        name: "isNull",
        arity: 1,
        run: |ev, a, _| Ok(Value::Bool(matches!(ev.force(&a[0])?, Value::Null))),
    },
    Builtin {
        name: "typeOf",
        arity: 1,
        run: |ev, a, _| Ok(Value::string(ev.force(&a[0])?.type_name())),
    },
    Builtin {
        name: "seq",
        arity: 2,
        run: seq,
    },
    Builtin {
        name: "deepSeq",
        arity: 2,
        run: deep_seq,
    },
    Builtin {
        name: "tryEval",
        arity: 1,
        run: try_eval,
    },
    Builtin {
        name: "trace",
        arity: 2,
        run: trace,
    },
    Builtin {
        name: "throw",
        arity: 1,
        run: throw,
    },
    Builtin {
        name: "abort",
        arity: 1,
        run: abort,
    },
    Builtin {
        name: "addErrorContext",
        arity: 2,
        run: |ev, a, _| ev.force(&a[1]),
    },
];

fn seq(ev: &mut Evaluator, args: &[Thunk], _: Span) -> EvalResult<Value> {
    ev.force(&args[0])?;
    ev.force(&args[1])
}

fn deep_seq(ev: &mut Evaluator, args: &[Thunk], _: Span) -> EvalResult<Value> {
    ev.force_deep(&args[0])?;
    ev.force(&args[1])
}

fn try_eval(ev: &mut Evaluator, args: &[Thunk], _: Span) -> EvalResult<Value> {
    let (success, value) = match ev.force(&args[0]) {
        Ok(v) => (true, v),
        Err(e) if e.catchable() => (false, Value::Bool(false)),
        Err(e) => return Err(e),
    };
    Ok(Value::Attrs(Attrs::from_sorted(vec![
        Attr {
            name: "success".into(),
            value: Thunk::Ready(Value::Bool(success)),
            span: None,
        },
        Attr {
            name: "value".into(),
            value: Thunk::Ready(value),
            span: None,
        },
    ])))
}

fn trace(ev: &mut Evaluator, args: &[Thunk], span: Span) -> EvalResult<Value> {
    let v = ev.force(&args[0])?;
    let mut text = String::new();
    match &v {
        Value::String(s) => text.push_str(&s.text),
        other => ev.to_nix(other, span, &mut text)?,
    }
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "trace: {text}");
    ev.force(&args[1])
}

fn message(ev: &mut Evaluator, t: &Thunk, span: Span) -> EvalResult<String> {
    Ok(ev.force_coerced(t, span)?.text.to_string())
}

fn throw(ev: &mut Evaluator, args: &[Thunk], span: Span) -> EvalResult<Value> {
    let m = message(ev, &args[0], span)?;
    Err(EvalError::new(ErrorKind::Throw(m), span))
}

fn abort(ev: &mut Evaluator, args: &[Thunk], span: Span) -> EvalResult<Value> {
    let m = message(ev, &args[0], span)?;
    Err(EvalError::new(ErrorKind::Abort(m), span))
}
