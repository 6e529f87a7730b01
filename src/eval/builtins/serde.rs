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
    from_json_numbers(v, &mut std::iter::empty())
}

fn from_json(ev: &mut Evaluator, args: &[Thunk], span: Span) -> EvalResult<Value> {
    let s = ev.force_string(&args[0], span)?;
    let parsed: serde_json::Value = serde_json::from_str(&s.text)
        .map_err(|e| EvalError::fatal(format!("invalid JSON: {e}"), span))?;
    let mut integral = integral_numbers(&s.text).into_iter();
    Ok(from_json_numbers(parsed, &mut integral))
}

/// For each number in a JSON text, in document order: was it written as an
/// integer (no `.`, no exponent)? serde_json reads `-0` as a float, Nix as an
/// integer.
fn integral_numbers(text: &str) -> Vec<bool> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
            }
            b'-' | b'0'..=b'9' => {
                let start = i;
                while i < bytes.len()
                    && matches!(bytes[i], b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')
                {
                    i += 1;
                }
                out.push(
                    !bytes[start..i]
                        .iter()
                        .any(|b| matches!(b, b'.' | b'e' | b'E')),
                );
            }
            _ => i += 1,
        }
    }
    out
}

/// Parsed JSON as a value; `integral` tells, number by number in document
/// order, whether it was written as an integer (it decides the type of `-0`,
/// which serde_json reads as a float).
fn from_json_numbers(v: serde_json::Value, integral: &mut impl Iterator<Item = bool>) -> Value {
    match v {
        serde_json::Value::Null => Value::Null,
        serde_json::Value::Bool(b) => Value::Bool(b),
        serde_json::Value::Number(n) => {
            let written_as_integer = integral.next().unwrap_or(false);
            match (n.as_i64(), n.as_f64()) {
                (Some(i), _) => Value::Int(i),
                (None, Some(f)) if f == 0.0 && written_as_integer => Value::Int(0),
                (None, f) => Value::Float(f.unwrap_or(f64::NAN)),
            }
        }
        serde_json::Value::String(s) => Value::string(s),
        serde_json::Value::Array(items) => Value::list(
            items
                .into_iter()
                .map(|i| Thunk::Ready(from_json_numbers(i, integral)))
                .collect(),
        ),
        serde_json::Value::Object(map) => Value::Attrs(Attrs::from_unsorted(
            map.into_iter()
                .map(|(k, v)| Attr {
                    name: k.into(),
                    value: Thunk::Ready(from_json_numbers(v, integral)),
                    span: None,
                })
                .collect(),
        )),
    }
}

fn from_toml_value(v: toml::Value, span: Span) -> EvalResult<Value> {
    Ok(match v {
        toml::Value::String(s) => Value::string(s),
        toml::Value::Integer(i) => Value::Int(i),
        toml::Value::Float(f) => Value::Float(f),
        toml::Value::Boolean(b) => Value::Bool(b),
        toml::Value::Datetime(d) => {
            return Err(EvalError::fatal(
                format!("TOML dates and times are not supported (`{d}`)"),
                span,
            )
            .with_help("write the date as a string"))
        }
        toml::Value::Array(items) => Value::list(
            items
                .into_iter()
                .map(|i| from_toml_value(i, span).map(Thunk::Ready))
                .collect::<EvalResult<_>>()?,
        ),
        toml::Value::Table(t) => Value::Attrs(Attrs::from_unsorted(
            t.into_iter()
                .map(|(k, v)| {
                    let value = Thunk::Ready(from_toml_value(v, span)?);
                    Ok(Attr {
                        name: k.into(),
                        value,
                        span: None,
                    })
                })
                .collect::<EvalResult<_>>()?,
        )),
    })
}

fn from_toml(ev: &mut Evaluator, args: &[Thunk], span: Span) -> EvalResult<Value> {
    let s = ev.force_string(&args[0], span)?;
    let table: toml::Table = s.text.parse().map_err(|e: toml::de::Error| {
        EvalError::fatal(format!("invalid TOML: {}", e.message()), span)
    })?;
    from_toml_value(toml::Value::Table(table), span)
}
