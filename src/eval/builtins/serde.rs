//! Builtins that read and write data formats: JSON and TOML.

use super::Builtin;
use crate::eval::{
    Attr, Attrs, Context, EvalError, EvalResult, Evaluator, NixString, Thunk, Value,
};
use crate::syntax::Span;

pub const BUILTINS: &[Builtin] = &[
    Builtin {
        name: "toJSON",
        arity: 1,
        run: to_json,
    },
    Builtin {
        name: "fromJSON",
        arity: 1,
        run: from_json,
    },
    Builtin {
        name: "fromTOML",
        arity: 1,
        run: from_toml,
    },
];

fn to_json(ev: &mut Evaluator, args: &[Thunk], span: Span) -> EvalResult<Value> {
    let v = ev.force(&args[0])?;
    let mut out = String::new();
    let mut ctx = Context::default();
    ev.to_json(&v, span, &mut out, &mut ctx)?;
    Ok(Value::String(NixString::with_context(out, ctx)))
}

/// Convert parsed JSON (also used for YAML and TOML after conversion).
pub fn from_serde_json(v: serde_json::Value) -> Value {
    match v {
        serde_json::Value::Null => Value::Null,
        serde_json::Value::Bool(b) => Value::Bool(b),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => Value::Int(i),
            None => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        serde_json::Value::String(s) => Value::string(s),
        serde_json::Value::Array(items) => Value::list(
            items
                .into_iter()
                .map(|i| Thunk::Ready(from_serde_json(i)))
                .collect(),
        ),
        serde_json::Value::Object(map) => Value::attrs(Attrs::from_unsorted(
            map.into_iter()
                .map(|(k, v)| Attr {
                    name: k.into(),
                    value: Thunk::Ready(from_serde_json(v)),
                    span: None,
                })
                .collect(),
        )),
    }
}

fn from_json(ev: &mut Evaluator, args: &[Thunk], span: Span) -> EvalResult<Value> {
    let s = ev.force_string(&args[0], span)?;
    let parsed: serde_json::Value = serde_json::from_str(&s.text)
        .map_err(|e| EvalError::fatal(format!("invalid JSON: {e}"), span))?;
    Ok(from_serde_json(parsed))
}

fn from_toml_value(v: toml::Value) -> Value {
    match v {
        toml::Value::String(s) => Value::string(s),
        toml::Value::Integer(i) => Value::Int(i),
        toml::Value::Float(f) => Value::Float(f),
        toml::Value::Boolean(b) => Value::Bool(b),
        toml::Value::Datetime(d) => Value::string(d.to_string()),
        toml::Value::Array(items) => Value::list(
            items
                .into_iter()
                .map(|i| Thunk::Ready(from_toml_value(i)))
                .collect(),
        ),
        toml::Value::Table(t) => Value::attrs(Attrs::from_unsorted(
            t.into_iter()
                .map(|(k, v)| Attr {
                    name: k.into(),
                    value: Thunk::Ready(from_toml_value(v)),
                    span: None,
                })
                .collect(),
        )),
    }
}

fn from_toml(ev: &mut Evaluator, args: &[Thunk], span: Span) -> EvalResult<Value> {
    let s = ev.force_string(&args[0], span)?;
    let table: toml::Table = s.text.parse().map_err(|e: toml::de::Error| {
        EvalError::fatal(format!("invalid TOML: {}", e.message()), span)
    })?;
    Ok(from_toml_value(toml::Value::Table(table)))
}
