//! The builtins: Nix's names, argument order, laziness and errors. Each file
//! holds one family; `ALL` lists every builtin, and `GLOBALS` the ones also
//! visible without `builtins.` (as in Nix).

mod attrs;
mod derivation;
mod fetch;
mod lists;
mod math;
mod paths;
mod serde;
mod strings;
mod types;

use super::value::Closure;
use super::{Attr, Attrs, Env, EvalError, EvalResult, Evaluator, NixString, Thunk, Value};
use crate::syntax::Span;
use std::rc::Rc;

/// A builtin function of a fixed number of (lazy) arguments.
pub struct Builtin {
    pub name: &'static str,
    pub arity: usize,
    pub run: fn(&mut Evaluator, &[Thunk], Span) -> EvalResult<Value>,
}

impl std::fmt::Debug for Builtin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "builtins.{}", self.name)
    }
}

/// Every builtin, by family.
fn all() -> impl Iterator<Item = &'static Builtin> {
    [
        attrs::BUILTINS,
        derivation::BUILTINS,
        fetch::BUILTINS,
        lists::BUILTINS,
        math::BUILTINS,
        paths::BUILTINS,
        serde::BUILTINS,
        strings::BUILTINS,
        types::BUILTINS,
    ]
    .into_iter()
    .flatten()
}

/// Builtins visible at top level, as in Nix.
const GLOBALS: &[&str] = &[
    "abort",
    "baseNameOf",
    "dirOf",
    "import",
    "isNull",
    "map",
    "removeAttrs",
    "throw",
    "toString",
];

/// The names and the frame of the outermost scope: `builtins`, `true`,
/// `false`, `null` and the top-level builtins.
pub fn globals() -> (Vec<&'static str>, Rc<Env>) {
    let mut entries: Vec<Attr> = all()
        .map(|b| Attr {
            name: b.name.into(),
            value: Thunk::Ready(builtin_value(b)),
            span: None,
        })
        .collect();
    entries.push(Attr {
        name: "langVersion".into(),
        value: Thunk::Ready(Value::Int(6)),
        span: None,
    });
    entries.push(Attr {
        name: "null".into(),
        value: Thunk::Ready(Value::Null),
        span: None,
    });
    entries.push(Attr {
        name: "true".into(),
        value: Thunk::Ready(Value::Bool(true)),
        span: None,
    });
    entries.push(Attr {
        name: "false".into(),
        value: Thunk::Ready(Value::Bool(false)),
        span: None,
    });
    // `builtins.builtins` is the set itself: a cell filled once the set exists.
    let itself = Thunk::apply(
        Value::Null,
        Default::default(),
        Span::new(crate::syntax::FileId(u32::MAX), 0, 0),
    );
    entries.push(Attr {
        name: "builtins".into(),
        value: itself.clone(),
        span: None,
    });
    let builtins = Attrs::from_unsorted(entries);
    if let Thunk::Lazy(cell) = &itself {
        cell.state
            .replace(super::value::Suspended::Done(Value::Attrs(
                builtins.clone(),
            )));
    }
    let mut names = vec!["builtins", "true", "false", "null"];
    let mut slots = vec![
        Thunk::Ready(Value::Attrs(builtins.clone())),
        Thunk::Ready(Value::Bool(true)),
        Thunk::Ready(Value::Bool(false)),
        Thunk::Ready(Value::Null),
    ];
    for name in GLOBALS {
        let attr = builtins
            .get(name)
            .expect("builtins: every global is a builtin");
        names.push(name);
        slots.push(attr.value.clone());
    }
    let env = Rc::new(Env {
        slots: std::cell::RefCell::new(slots.into()),
        with: None,
        parent: None,
    });
    (names, env)
}

fn builtin_value(b: &'static Builtin) -> Value {
    Value::Builtin(Rc::new(super::value::BuiltinApp {
        builtin: b,
        args: Vec::new(),
    }))
}

// ── functions Nix leaves unforced ─────────────────────────────────────────

/// `map`, `genList` and `mapAttrs` do not force their function: `map 1 [ ]` is `[ ]`
/// and `length (map 1 [ 1 ])` is 1, as in Nix. Each element applies `f`, whatever it is,
/// when it is needed. A function that is already a value (the usual case) is applied
/// directly; otherwise through these, which force it then.
static APPLY_LATER: [Builtin; 3] = [
    Builtin {
        name: "map",
        arity: 2,
        run: apply_later,
    },
    Builtin {
        name: "genList",
        arity: 2,
        run: apply_later,
    },
    Builtin {
        name: "mapAttrs",
        arity: 3,
        run: apply_later,
    },
];

fn apply_later(ev: &mut Evaluator, args: &[Thunk], span: Span) -> EvalResult<Value> {
    let f = ev.force_function(&args[0], span)?;
    ev.apply_all(&f, &args[1..], span)
}

/// The function argument `t` of the builtin `name` (one of `APPLY_LATER`), to be
/// applied to the rest of the arguments by `Thunk::apply`, without forcing it now.
pub(super) fn lazy_function(t: &Thunk, name: &str) -> Value {
    if let Some(v) = t.value() {
        if v.is_function() {
            return v;
        }
    }
    let builtin = APPLY_LATER
        .iter()
        .find(|b| b.name == name)
        .expect("builtins: lazy_function is only used by the APPLY_LATER builtins");
    Value::Builtin(Rc::new(super::value::BuiltinApp {
        builtin,
        args: vec![t.clone()],
    }))
}

// ── typed access to arguments ─────────────────────────────────────────────

impl Evaluator {
    fn arg_error(&self, expected: &str, got: &Value, t: &Thunk, span: Span) -> EvalError {
        let err = self.type_error(expected, got, span, None);
        match t.origin() {
            Some(origin) if origin != span => {
                err.with_label(origin, format!("this is {}", got.describe()))
            }
            _ => err,
        }
    }

    pub fn force_int(&mut self, t: &Thunk, span: Span) -> EvalResult<i64> {
        match self.force(t)? {
            Value::Int(n) => Ok(n),
            other => Err(self.arg_error("an integer", &other, t, span)),
        }
    }

    pub fn force_number(&mut self, t: &Thunk, span: Span) -> EvalResult<Value> {
        match self.force(t)? {
            v @ (Value::Int(_) | Value::Float(_)) => Ok(v),
            other => Err(self.arg_error("a number", &other, t, span)),
        }
    }

    pub fn force_bool(&mut self, t: &Thunk, span: Span) -> EvalResult<bool> {
        match self.force(t)? {
            Value::Bool(b) => Ok(b),
            other => Err(self.arg_error("a Boolean", &other, t, span)),
        }
    }

    pub fn force_string(&mut self, t: &Thunk, span: Span) -> EvalResult<NixString> {
        match self.force(t)? {
            Value::String(s) => Ok(s),
            other => Err(self.arg_error("a string", &other, t, span)),
        }
    }

    /// A string, or anything Nix coerces to one without `toString`'s extras.
    pub fn force_coerced(&mut self, t: &Thunk, span: Span) -> EvalResult<NixString> {
        let v = self.force(t)?;
        self.coerce_to_string(&v, span, false)
    }

    pub fn force_list(&mut self, t: &Thunk, span: Span) -> EvalResult<Rc<[Thunk]>> {
        match self.force(t)? {
            Value::List(l) => Ok(l),
            other => Err(self.arg_error("a list", &other, t, span)),
        }
    }

    pub fn force_attrs(&mut self, t: &Thunk, span: Span) -> EvalResult<Attrs> {
        match self.force(t)? {
            Value::Attrs(a) => Ok(a),
            other => Err(self.arg_error("a set", &other, t, span)),
        }
    }

    pub fn force_function(&mut self, t: &Thunk, span: Span) -> EvalResult<Value> {
        match self.force(t)? {
            v if v.is_function() => Ok(v),
            Value::Attrs(a) if a.get("__functor").is_some() => Ok(Value::Attrs(a)),
            other => Err(self.arg_error("a function", &other, t, span)),
        }
    }

    /// Apply a function to values and force the result to a Boolean.
    pub fn predicate(
        &mut self,
        f: &mut super::Repeated,
        args: &[Thunk],
        span: Span,
    ) -> EvalResult<bool> {
        match self.call_repeated(f, args, span)? {
            Value::Bool(b) => Ok(b),
            other => Err(self.type_error(
                "a Boolean",
                &other,
                span,
                Some("the result of the predicate"),
            )),
        }
    }
}

/// The formals of a lambda, for `builtins.functionArgs`.
pub(super) fn function_args(closure: &Closure) -> Attrs {
    match &closure.lambda.param {
        crate::syntax::ast::Param::Ident(..) => Attrs::new(),
        crate::syntax::ast::Param::Formals { formals, .. } => Attrs::from_unsorted(
            formals
                .iter()
                .map(|f| Attr {
                    name: f.name.clone(),
                    value: Thunk::Ready(Value::Bool(f.default.is_some())),
                    span: Some(f.span),
                })
                .collect(),
        ),
    }
}
