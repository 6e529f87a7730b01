//! bottle's own builtins: derivations (`writeText`), data formats that turn
//! into config files (`toTOML`, `toYAML`, `fromYAML`), and secret references
//! (`secret`). A derivation value is an attribute set with
//! `type = "derivation"` whose `outPath` is `/bottle/store/<hash>-<name>`,
//! a string whose context records the derivation, so interpolating it
//! anywhere carries the dependency along.

use super::Builtin;
use crate::eval::{
    Attr, Attrs, Context, EvalError, EvalResult, Evaluator, NixString, Thunk, Value,
};
use crate::store::derivation::check_name;
use crate::syntax::Span;
use std::sync::Arc;

pub const BUILTINS: &[Builtin] = &[
    Builtin {
        name: "writeText",
        arity: 2,
        run: write_text,
    },
    Builtin {
        name: "toTOML",
        arity: 1,
        run: to_toml,
    },
    Builtin {
        name: "toYAML",
        arity: 1,
        run: to_yaml,
    },
    Builtin {
        name: "fromYAML",
        arity: 1,
        run: from_yaml,
    },
    Builtin {
        name: "secret",
        arity: 1,
        run: secret,
    },
];

fn attr(name: &str, value: Value) -> Attr {
    Attr {
        name: name.into(),
        value: Thunk::Ready(value),
        span: None,
    }
}

/// The value a recipe sees for a derivation; the evaluator remembers the
/// derivation so its path, wherever it is interpolated, leads back to it.
pub fn derivation_value(ev: &mut Evaluator, drv: &Arc<crate::store::Derivation>) -> Value {
    ev.remember_derivation(drv);
    let path = drv.guest_path();
    let out = NixString::with_context(path.as_str(), Context::single(path.as_str().into()));
    Value::Attrs(Attrs::from_unsorted(vec![
        attr("type", Value::string("derivation")),
        attr("name", Value::string(drv.name())),
        attr("kind", Value::string(drv.kind().as_str())),
        attr("outPath", Value::String(out)),
    ]))
}

fn write_text(ev: &mut Evaluator, args: &[Thunk], span: Span) -> EvalResult<Value> {
    let name = ev.force_string(&args[0], span)?;
    if !name.context.is_empty() {
        return Err(
            EvalError::fatal("the name of `writeText` cannot mention a derivation", span)
                .with_help("a store name is plain text, e.g. `\"settings.json\"`"),
        );
    }
    if let Err(e) = check_name(&name.text) {
        return Err(EvalError::fatal(format!("`writeText`: {e}"), span)
            .with_help("name it like a file, e.g. `\"settings.json\"`"));
    }
    let text = ev.force_string(&args[1], span)?;
    let deps: Vec<_> = text
        .context
        .iter()
        .filter_map(|p| ev.derivation_at(p))
        .collect();
    let drv = crate::lower::file::text_file(&name.text, &text.text, deps)
        .map_err(|e| EvalError::fatal(format!("`writeText`: {e}"), span))?;
    Ok(derivation_value(ev, &drv))
}

/// Force a value to JSON data (keys sorted, as Nix's `toJSON`), keeping the context.
fn to_data(
    ev: &mut Evaluator,
    args: &[Thunk],
    span: Span,
) -> EvalResult<(serde_json::Value, Context)> {
    let v = ev.force(&args[0])?;
    let mut text = String::new();
    let mut ctx = Context::default();
    ev.to_json(&v, span, &mut text, &mut ctx)?;
    let data = serde_json::from_str(&text)
        .map_err(|e| EvalError::fatal(format!("cannot convert the value: {e}"), span))?;
    Ok((data, ctx))
}

fn to_toml(ev: &mut Evaluator, args: &[Thunk], span: Span) -> EvalResult<Value> {
    let (data, ctx) = to_data(ev, args, span)?;
    if !data.is_object() {
        return Err(
            EvalError::fatal("`toTOML` needs a set: a TOML document is a table", span)
                .with_help("wrap the value, e.g. `builtins.toTOML { value = …; }`"),
        );
    }
    let value = toml::Value::try_from(&data).map_err(|e| {
        EvalError::fatal(format!("`toTOML`: {e}"), span)
            .with_help("TOML has no null; leave such attributes out")
    })?;
    let text =
        toml::to_string(&value).map_err(|e| EvalError::fatal(format!("`toTOML`: {e}"), span))?;
    Ok(Value::String(NixString::with_context(text, ctx)))
}

fn to_yaml(ev: &mut Evaluator, args: &[Thunk], span: Span) -> EvalResult<Value> {
    let (data, ctx) = to_data(ev, args, span)?;
    let text = serde_yaml::to_string(&data)
        .map_err(|e| EvalError::fatal(format!("`toYAML`: {e}"), span))?;
    Ok(Value::String(NixString::with_context(text, ctx)))
}

fn from_yaml(ev: &mut Evaluator, args: &[Thunk], span: Span) -> EvalResult<Value> {
    let text = ev.force_string(&args[0], span)?;
    let data: serde_json::Value = serde_yaml::from_str(&text.text)
        .map_err(|e| EvalError::fatal(format!("invalid YAML: {e}"), span))?;
    Ok(super::serde::from_serde_json(data))
}

/// `secret { env = "NAME"; }` or `secret { file = "/path"; }`: a reference
/// the host resolves at run time. The value it names is never read here.
fn secret(ev: &mut Evaluator, args: &[Thunk], span: Span) -> EvalResult<Value> {
    let spec = ev.force_attrs(&args[0], span)?;
    let usage =
        "write `builtins.secret { env = \"NAME\"; }` or `builtins.secret { file = \"/path\"; }`";
    let names: Vec<&str> = spec.names().collect();
    let (key, thunk) = match names.as_slice() {
        ["env"] | ["file"] => (
            names[0],
            spec.get(names[0]).expect("listed name").value.clone(),
        ),
        _ => {
            let unknown = names.iter().find(|n| !["env", "file"].contains(n));
            let help = unknown
                .and_then(|n| crate::suggest::did_you_mean(n, ["env", "file"]))
                .unwrap_or_else(|| usage.to_string());
            return Err(
                EvalError::fatal("a secret names exactly one of `env` or `file`", span)
                    .with_help(help),
            );
        }
    };
    let value = ev.force_string(&thunk, span)?;
    let valid = match key {
        "env" => {
            !value.text.is_empty()
                && !value.text.starts_with(|c: char| c.is_ascii_digit())
                && value
                    .text
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_')
        }
        _ => value.text.starts_with('/'),
    };
    if !valid {
        let what = if key == "env" {
            "an environment variable name"
        } else {
            "an absolute host path"
        };
        return Err(
            EvalError::fatal(format!("`{}` is not {what}", value.text), span).with_help(usage),
        );
    }
    Ok(Value::Attrs(Attrs::from_unsorted(vec![
        attr("type", Value::string("secret")),
        attr(key, Value::string(value.text.as_ref())),
    ])))
}
