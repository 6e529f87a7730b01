//! Builtins that touch files, all through the evaluator's `EvalIO`.

use super::Builtin;
use crate::eval::{Attr, Attrs, EvalError, EvalResult, Evaluator, Thunk, Value};
use crate::syntax::Span;

pub const BUILTINS: &[Builtin] = &[
    Builtin {
        name: "import",
        arity: 1,
        run: import,
    },
    Builtin {
        name: "readFile",
        arity: 1,
        run: read_file,
    },
    Builtin {
        name: "pathExists",
        arity: 1,
        run: path_exists,
    },
    Builtin {
        name: "readDir",
        arity: 1,
        run: read_dir,
    },
];

fn import(ev: &mut Evaluator, args: &[Thunk], span: Span) -> EvalResult<Value> {
    let v = ev.force(&args[0])?;
    let path = ev.to_path(&v, span)?;
    ev.import(&path, span)
}

fn read_file(ev: &mut Evaluator, args: &[Thunk], span: Span) -> EvalResult<Value> {
    let v = ev.force(&args[0])?;
    let path = ev.to_path(&v, span)?;
    let text = ev
        .io()
        .read_to_string(&path)
        .map_err(|e| EvalError::fatal(format!("cannot read `{}`: {e}", path.display()), span))?;
    Ok(Value::string(text))
}

fn path_exists(ev: &mut Evaluator, args: &[Thunk], span: Span) -> EvalResult<Value> {
    let v = ev.force(&args[0])?;
    let path = ev.to_path(&v, span)?;
    Ok(Value::Bool(ev.io().exists(&path)))
}

fn read_dir(ev: &mut Evaluator, args: &[Thunk], span: Span) -> EvalResult<Value> {
    let v = ev.force(&args[0])?;
    let path = ev.to_path(&v, span)?;
    let entries = ev.io().read_dir(&path).map_err(|e| {
        EvalError::fatal(
            format!("cannot read directory `{}`: {e}", path.display()),
            span,
        )
    })?;
    Ok(Value::Attrs(Attrs::from_unsorted(
        entries
            .into_iter()
            .map(|(name, kind)| Attr {
                name: name.into(),
                value: Thunk::Ready(Value::string(kind)),
                span: None,
            })
            .collect(),
    )))
}
