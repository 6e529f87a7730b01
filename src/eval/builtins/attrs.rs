//! Builtins on attribute sets.

use super::{function_args, Builtin};
use crate::eval::{Attr, Attrs, EvalError, EvalResult, Evaluator, Thunk, Value};
use crate::syntax::Span;
use std::collections::BTreeMap;
use std::rc::Rc;

pub const BUILTINS: &[Builtin] = &[
    Builtin {
        name: "attrNames",
        arity: 1,
        run: attr_names,
    },
    Builtin {
        name: "attrValues",
        arity: 1,
        run: attr_values,
    },
    Builtin {
        name: "hasAttr",
        arity: 2,
        run: has_attr,
    },
    Builtin {
        name: "getAttr",
        arity: 2,
        run: get_attr,
    },
    Builtin {
        name: "listToAttrs",
        arity: 1,
        run: list_to_attrs,
    },
    Builtin {
        name: "mapAttrs",
        arity: 2,
        run: map_attrs,
    },
    Builtin {
        name: "removeAttrs",
        arity: 2,
        run: remove_attrs,
    },
    Builtin {
        name: "catAttrs",
        arity: 2,
        run: cat_attrs,
    },
    Builtin {
        name: "intersectAttrs",
        arity: 2,
        run: intersect_attrs,
    },
    Builtin {
        name: "zipAttrsWith",
        arity: 2,
        run: zip_attrs_with,
    },
    Builtin {
        name: "functionArgs",
        arity: 1,
        run: function_args_builtin,
    },
    Builtin {
        name: "genericClosure",
        arity: 1,
        run: generic_closure,
    },
];

fn attr_names(ev: &mut Evaluator, args: &[Thunk], span: Span) -> EvalResult<Value> {
    let attrs = ev.force_attrs(&args[0], span)?;
    Ok(Value::list(
        attrs
            .names()
            .map(|n| Thunk::Ready(Value::string(n)))
            .collect(),
    ))
}

fn attr_values(ev: &mut Evaluator, args: &[Thunk], span: Span) -> EvalResult<Value> {
    let attrs = ev.force_attrs(&args[0], span)?;
    Ok(Value::list(attrs.iter().map(|a| a.value.clone()).collect()))
}

fn has_attr(ev: &mut Evaluator, args: &[Thunk], span: Span) -> EvalResult<Value> {
    let name = ev.force_string(&args[0], span)?;
    let attrs = ev.force_attrs(&args[1], span)?;
    Ok(Value::Bool(attrs.get(&name.text).is_some()))
}

fn get_attr(ev: &mut Evaluator, args: &[Thunk], span: Span) -> EvalResult<Value> {
    let name = ev.force_string(&args[0], span)?;
    let attrs = ev.force_attrs(&args[1], span)?;
    match attrs.get(&name.text) {
        Some(a) => {
            let t = a.value.clone();
            ev.force(&t)
        }
        None => Err(
            EvalError::fatal(format!("attribute `{}` missing", name.text), span)
                .with_help_opt(crate::suggest::did_you_mean(&name.text, attrs.names())),
        ),
    }
}

fn list_to_attrs(ev: &mut Evaluator, args: &[Thunk], span: Span) -> EvalResult<Value> {
    let list = ev.force_list(&args[0], span)?;
    let mut entries = Vec::with_capacity(list.len());
    for item in list.iter() {
        let pair = ev.force_attrs(item, span)?;
        let name = pair.get("name").ok_or_else(|| {
            EvalError::fatal(
                "attribute `name` missing in an element of `listToAttrs`",
                span,
            )
            .with_help("each element must be a set `{ name = …; value = …; }`")
        })?;
        let name = ev.force_string(&name.value.clone(), span)?;
        let value = pair.get("value").ok_or_else(|| {
            EvalError::fatal(
                "attribute `value` missing in an element of `listToAttrs`",
                span,
            )
            .with_help("each element must be a set `{ name = …; value = …; }`")
        })?;
        entries.push(Attr {
            name: name.text,
            value: value.value.clone(),
            span: value.span,
        });
    }
    // The first definition of a name wins in `listToAttrs`.
    entries.reverse();
    Ok(Value::Attrs(Attrs::from_unsorted(entries)))
}

fn map_attrs(ev: &mut Evaluator, args: &[Thunk], span: Span) -> EvalResult<Value> {
    let f = super::lazy_function(&args[0], "mapAttrs");
    let attrs = ev.force_attrs(&args[1], span)?;
    let entries = attrs
        .iter()
        .map(|a| Attr {
            name: a.name.clone(),
            value: Thunk::apply(
                f.clone(),
                smallvec::smallvec![Thunk::Ready(Value::string(a.name.clone())), a.value.clone()],
                span,
            ),
            span: a.span,
        })
        .collect();
    Ok(Value::Attrs(Attrs::from_sorted(entries)))
}

fn remove_attrs(ev: &mut Evaluator, args: &[Thunk], span: Span) -> EvalResult<Value> {
    let attrs = ev.force_attrs(&args[0], span)?;
    let names = ev.force_list(&args[1], span)?;
    let mut remove = Vec::with_capacity(names.len());
    for n in names.iter() {
        remove.push(ev.force_string(n, span)?.text);
    }
    let entries = attrs
        .iter()
        .filter(|a| !remove.contains(&a.name))
        .cloned()
        .collect();
    Ok(Value::Attrs(Attrs::from_sorted(entries)))
}

fn cat_attrs(ev: &mut Evaluator, args: &[Thunk], span: Span) -> EvalResult<Value> {
    let name = ev.force_string(&args[0], span)?;
    let list = ev.force_list(&args[1], span)?;
    let mut out = Vec::new();
    for item in list.iter() {
        let attrs = ev.force_attrs(item, span)?;
        if let Some(a) = attrs.get(&name.text) {
            out.push(a.value.clone());
        }
    }
    Ok(Value::list(out))
}

fn intersect_attrs(ev: &mut Evaluator, args: &[Thunk], span: Span) -> EvalResult<Value> {
    let a = ev.force_attrs(&args[0], span)?;
    let b = ev.force_attrs(&args[1], span)?;
    let entries = b
        .iter()
        .filter(|x| a.get(&x.name).is_some())
        .cloned()
        .collect();
    Ok(Value::Attrs(Attrs::from_sorted(entries)))
}

fn zip_attrs_with(ev: &mut Evaluator, args: &[Thunk], span: Span) -> EvalResult<Value> {
    let f = ev.force_function(&args[0], span)?;
    let sets = ev.force_list(&args[1], span)?;
    let mut grouped: BTreeMap<Rc<str>, Vec<Thunk>> = BTreeMap::new();
    for s in sets.iter() {
        let attrs = ev.force_attrs(s, span)?;
        for a in attrs.iter() {
            grouped
                .entry(a.name.clone())
                .or_default()
                .push(a.value.clone());
        }
    }
    let entries = grouped
        .into_iter()
        .map(|(name, values)| Attr {
            name: name.clone(),
            value: Thunk::apply(
                f.clone(),
                smallvec::smallvec![
                    Thunk::Ready(Value::string(name)),
                    Thunk::Ready(Value::list(values)),
                ],
                span,
            ),
            span: None,
        })
        .collect();
    Ok(Value::Attrs(Attrs::from_sorted(entries)))
}

fn function_args_builtin(ev: &mut Evaluator, args: &[Thunk], span: Span) -> EvalResult<Value> {
    match ev.force_function(&args[0], span)? {
        Value::Lambda(c) => Ok(Value::Attrs(function_args(&c))),
        _ => Ok(Value::Attrs(Attrs::new())),
    }
}

fn generic_closure(ev: &mut Evaluator, args: &[Thunk], span: Span) -> EvalResult<Value> {
    let spec = ev.force_attrs(&args[0], span)?;
    let start = spec
        .get("startSet")
        .ok_or_else(|| EvalError::fatal("attribute `startSet` missing", span))?;
    let mut work: std::collections::VecDeque<Thunk> = ev
        .force_list(&start.value.clone(), span)?
        .iter()
        .cloned()
        .collect();
    let op = spec
        .get("operator")
        .ok_or_else(|| EvalError::fatal("attribute `operator` missing", span))?;
    // Like Nix: the operator is forced now, but only has to be a function once there
    // is an element to apply it to.
    let op = op.value.clone();
    ev.force(&op)?;
    let mut seen: Vec<Value> = Vec::new();
    let mut out = Vec::new();
    while let Some(item) = work.pop_front() {
        let attrs = ev.force_attrs(&item, span)?;
        let key = attrs.get("key").ok_or_else(|| {
            EvalError::fatal(
                "attribute `key` missing in a `genericClosure` element",
                span,
            )
        })?;
        let key = ev.force(&key.value.clone())?;
        let mut known = false;
        for k in &seen {
            if ev.equal(k, &key)? {
                known = true;
                break;
            }
        }
        if known {
            continue;
        }
        seen.push(key);
        out.push(item.clone());
        let f = ev.force_function(&op, span)?;
        let next = ev.apply(f, item, span)?;
        let Value::List(next) = next else {
            return Err(ev.type_error("a list", &next, span, Some("the result of `operator`")));
        };
        work.extend(next.iter().cloned());
    }
    Ok(Value::list(out))
}
