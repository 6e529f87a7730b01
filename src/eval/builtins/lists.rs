//! Builtins on lists.

use super::Builtin;
use crate::eval::{Attr, Attrs, EvalError, EvalResult, Evaluator, Repeated, Thunk, Value};
use crate::syntax::Span;
use std::collections::BTreeMap;
use std::rc::Rc;

pub const BUILTINS: &[Builtin] = &[
    Builtin {
        name: "map",
        arity: 2,
        run: map,
    },
    Builtin {
        name: "filter",
        arity: 2,
        run: filter,
    },
    Builtin {
        name: "foldl'",
        arity: 3,
        run: foldl,
    },
    Builtin {
        name: "genList",
        arity: 2,
        run: gen_list,
    },
    Builtin {
        name: "length",
        arity: 1,
        run: length,
    },
    Builtin {
        name: "head",
        arity: 1,
        run: head,
    },
    Builtin {
        name: "tail",
        arity: 1,
        run: tail,
    },
    Builtin {
        name: "elemAt",
        arity: 2,
        run: elem_at,
    },
    Builtin {
        name: "elem",
        arity: 2,
        run: elem,
    },
    Builtin {
        name: "concatLists",
        arity: 1,
        run: concat_lists,
    },
    Builtin {
        name: "concatMap",
        arity: 2,
        run: concat_map,
    },
    Builtin {
        name: "sort",
        arity: 2,
        run: sort,
    },
    Builtin {
        name: "partition",
        arity: 2,
        run: partition,
    },
    Builtin {
        name: "groupBy",
        arity: 2,
        run: group_by,
    },
    Builtin {
        name: "all",
        arity: 2,
        run: all,
    },
    Builtin {
        name: "any",
        arity: 2,
        run: any,
    },
];

fn map(ev: &mut Evaluator, args: &[Thunk], span: Span) -> EvalResult<Value> {
    let f = super::lazy_function(&args[0], "map");
    let list = ev.force_list(&args[1], span)?;
    Ok(Value::list(
        list.iter()
            .map(|x| Thunk::apply(f.clone(), smallvec::smallvec![x.clone()], span))
            .collect(),
    ))
}

fn filter(ev: &mut Evaluator, args: &[Thunk], span: Span) -> EvalResult<Value> {
    let mut f = Repeated::new(ev.force_function(&args[0], span)?);
    let list = ev.force_list(&args[1], span)?;
    let mut out = Vec::new();
    for x in list.iter() {
        if ev.predicate(&mut f, std::slice::from_ref(x), span)? {
            out.push(x.clone());
        }
    }
    Ok(Value::list(out))
}

fn foldl(ev: &mut Evaluator, args: &[Thunk], span: Span) -> EvalResult<Value> {
    // As in Nix: the initial accumulator is only forced when the list is empty;
    // otherwise it goes to the first call as it is, and each call's result is forced.
    let mut f = Repeated::new(ev.force_function(&args[0], span)?);
    let list = ev.force_list(&args[2], span)?;
    let mut acc = args[1].clone();
    for x in list.iter() {
        acc = Thunk::Ready(ev.call_repeated(&mut f, &[acc, x.clone()], span)?);
    }
    ev.force(&acc)
}

fn gen_list(ev: &mut Evaluator, args: &[Thunk], span: Span) -> EvalResult<Value> {
    let f = super::lazy_function(&args[0], "genList");
    let n = ev.force_int(&args[1], span)?;
    if n < 0 {
        return Err(EvalError::fatal(
            format!("cannot create a list of size {n}"),
            span,
        ));
    }
    Ok(Value::list(
        (0..n)
            .map(|i| {
                Thunk::apply(
                    f.clone(),
                    smallvec::smallvec![Thunk::Ready(Value::Int(i))],
                    span,
                )
            })
            .collect(),
    ))
}

fn length(ev: &mut Evaluator, args: &[Thunk], span: Span) -> EvalResult<Value> {
    Ok(Value::Int(ev.force_list(&args[0], span)?.len() as i64))
}

fn head(ev: &mut Evaluator, args: &[Thunk], span: Span) -> EvalResult<Value> {
    let list = ev.force_list(&args[0], span)?;
    match list.first() {
        Some(t) => ev.force(&t.clone()),
        None => Err(EvalError::fatal("`head` called on an empty list", span)),
    }
}

fn tail(ev: &mut Evaluator, args: &[Thunk], span: Span) -> EvalResult<Value> {
    let list = ev.force_list(&args[0], span)?;
    if list.is_empty() {
        return Err(EvalError::fatal("`tail` called on an empty list", span));
    }
    Ok(Value::list(list[1..].to_vec()))
}

fn elem_at(ev: &mut Evaluator, args: &[Thunk], span: Span) -> EvalResult<Value> {
    let list = ev.force_list(&args[0], span)?;
    let i = ev.force_int(&args[1], span)?;
    match usize::try_from(i).ok().and_then(|i| list.get(i)) {
        Some(t) => ev.force(&t.clone()),
        None => Err(
            EvalError::fatal(format!("list index {i} is out of bounds"), span)
                .with_help(format!("the list has {} elements", list.len())),
        ),
    }
}

fn elem(ev: &mut Evaluator, args: &[Thunk], span: Span) -> EvalResult<Value> {
    // As in Nix: the list first; the value only once there is something to compare.
    let list = ev.force_list(&args[1], span)?;
    for t in list.iter() {
        let x = ev.force(&args[0])?;
        let y = ev.force(t)?;
        if ev.equal(&x, &y)? {
            return Ok(Value::Bool(true));
        }
    }
    Ok(Value::Bool(false))
}

fn concat_lists(ev: &mut Evaluator, args: &[Thunk], span: Span) -> EvalResult<Value> {
    let lists = ev.force_list(&args[0], span)?;
    let mut out = Vec::new();
    for l in lists.iter() {
        out.extend(ev.force_list(l, span)?.iter().cloned());
    }
    Ok(Value::list(out))
}

fn concat_map(ev: &mut Evaluator, args: &[Thunk], span: Span) -> EvalResult<Value> {
    let f = ev.force_function(&args[0], span)?;
    let list = ev.force_list(&args[1], span)?;
    let mut out = Vec::new();
    for x in list.iter() {
        match ev.apply(f.clone(), x.clone(), span)? {
            Value::List(l) => out.extend(l.iter().cloned()),
            other => {
                return Err(ev.type_error(
                    "a list",
                    &other,
                    span,
                    Some("the result of the function"),
                ))
            }
        }
    }
    Ok(Value::list(out))
}

fn sort(ev: &mut Evaluator, args: &[Thunk], span: Span) -> EvalResult<Value> {
    let mut f = Repeated::new(ev.force_function(&args[0], span)?);
    let list = ev.force_list(&args[1], span)?;
    // Nix forces every element before sorting, even a single one.
    for t in list.iter() {
        ev.force(t)?;
    }
    let mut items: Vec<Thunk> = list.iter().cloned().collect();
    // Stable, like Nix's `std::stable_sort`; the first error stops the sort.
    let mut failure: Option<EvalError> = None;
    // `sort lessThan`: compare directly, as Nix does, without calling a function.
    let direct =
        matches!(f.func(), Value::Builtin(b) if b.builtin.name == "lessThan" && b.args.is_empty());
    if direct && items.len() > 1 {
        if let Some(sorted) = sort_plain(ev, &items)? {
            return Ok(Value::list(sorted));
        }
    }
    merge_sort(&mut items, &mut |a, b| {
        if failure.is_some() {
            return false;
        }
        if direct {
            let r = ev
                .force(a)
                .and_then(|a| ev.force(b).and_then(|b| ev.less_than(&a, &b, span)));
            return r.unwrap_or_else(|e| {
                failure = Some(e);
                false
            });
        }
        match ev.predicate(&mut f, &[a.clone(), b.clone()], span) {
            Ok(r) => r,
            Err(e) => {
                failure = Some(e);
                false
            }
        }
    });
    match failure {
        Some(e) => Err(e),
        None => Ok(Value::list(items)),
    }
}

/// `sort lessThan` over a list of only integers or only strings: the same
/// order Nix's stable sort gives, computed natively. `None` for other lists.
/// Every element is forced, as the comparisons of any sort of two or more
/// elements would.
fn sort_plain(ev: &mut Evaluator, items: &[Thunk]) -> EvalResult<Option<Vec<Thunk>>> {
    let mut values = Vec::with_capacity(items.len());
    for t in items {
        values.push(ev.force(t)?);
    }
    let mut order: Vec<usize> = (0..values.len()).collect();
    if values.iter().all(|v| matches!(v, Value::Int(_))) {
        let key = |i: &usize| match values[*i] {
            Value::Int(n) => n,
            _ => unreachable!("checked: every value is an integer"),
        };
        order.sort_by_key(key);
    } else if values.iter().all(|v| matches!(v, Value::String(_))) {
        let text = |i: usize| match &values[i] {
            Value::String(s) => s.text.as_bytes(),
            _ => unreachable!("checked: every value is a string"),
        };
        order.sort_by(|a, b| text(*a).cmp(text(*b)));
    } else {
        return Ok(None);
    }
    Ok(Some(
        order
            .into_iter()
            .map(|i| Thunk::Ready(values[i].clone()))
            .collect(),
    ))
}

/// A stable merge sort driven by a strict "less than" that may fail (so
/// `slice::sort_by`, which may panic on an inconsistent order, is not used).
/// Elements move between two buffers; nothing is cloned.
fn merge_sort(items: &mut Vec<Thunk>, less: &mut dyn FnMut(&Thunk, &Thunk) -> bool) {
    let n = items.len();
    if n < 2 {
        return;
    }
    let hole = || Thunk::Ready(Value::Null);
    let take =
        |v: &mut Vec<Thunk>, i: usize| std::mem::replace(&mut v[i], Thunk::Ready(Value::Null));
    let mut src: Vec<Thunk> = std::mem::take(items);
    let mut dst: Vec<Thunk> = (0..n).map(|_| hole()).collect();
    let mut width = 1;
    while width < n {
        let mut i = 0;
        while i < n {
            let mid = (i + width).min(n);
            let end = (i + 2 * width).min(n);
            let (mut l, mut r) = (i, mid);
            for slot in dst.iter_mut().take(end).skip(i) {
                let from_right = l >= mid || (r < end && less(&src[r], &src[l]));
                *slot = if from_right {
                    r += 1;
                    take(&mut src, r - 1)
                } else {
                    l += 1;
                    take(&mut src, l - 1)
                };
            }
            i += 2 * width;
        }
        std::mem::swap(&mut src, &mut dst);
        width *= 2;
    }
    *items = src;
}

fn partition(ev: &mut Evaluator, args: &[Thunk], span: Span) -> EvalResult<Value> {
    let mut f = Repeated::new(ev.force_function(&args[0], span)?);
    let list = ev.force_list(&args[1], span)?;
    let (mut right, mut wrong) = (Vec::new(), Vec::new());
    for x in list.iter() {
        // Nix forces each element before calling the predicate on it.
        ev.force(x)?;
        if ev.predicate(&mut f, std::slice::from_ref(x), span)? {
            right.push(x.clone());
        } else {
            wrong.push(x.clone());
        }
    }
    Ok(Value::Attrs(Attrs::from_sorted(vec![
        Attr {
            name: "right".into(),
            value: Thunk::Ready(Value::list(right)),
            span: None,
        },
        Attr {
            name: "wrong".into(),
            value: Thunk::Ready(Value::list(wrong)),
            span: None,
        },
    ])))
}

fn group_by(ev: &mut Evaluator, args: &[Thunk], span: Span) -> EvalResult<Value> {
    let f = ev.force_function(&args[0], span)?;
    let list = ev.force_list(&args[1], span)?;
    let mut groups: BTreeMap<Rc<str>, Vec<Thunk>> = BTreeMap::new();
    for x in list.iter() {
        let key = match ev.apply(f.clone(), x.clone(), span)? {
            Value::String(s) => s.text,
            other => {
                return Err(ev.type_error(
                    "a string",
                    &other,
                    span,
                    Some("the result of the function"),
                ))
            }
        };
        groups.entry(key).or_default().push(x.clone());
    }
    let entries = groups
        .into_iter()
        .map(|(name, items)| Attr {
            name,
            value: Thunk::Ready(Value::list(items)),
            span: None,
        })
        .collect();
    Ok(Value::Attrs(Attrs::from_sorted(entries)))
}

fn all(ev: &mut Evaluator, args: &[Thunk], span: Span) -> EvalResult<Value> {
    let mut f = Repeated::new(ev.force_function(&args[0], span)?);
    let list = ev.force_list(&args[1], span)?;
    for x in list.iter() {
        if !ev.predicate(&mut f, std::slice::from_ref(x), span)? {
            return Ok(Value::Bool(false));
        }
    }
    Ok(Value::Bool(true))
}

fn any(ev: &mut Evaluator, args: &[Thunk], span: Span) -> EvalResult<Value> {
    let mut f = Repeated::new(ev.force_function(&args[0], span)?);
    let list = ev.force_list(&args[1], span)?;
    for x in list.iter() {
        if ev.predicate(&mut f, std::slice::from_ref(x), span)? {
            return Ok(Value::Bool(true));
        }
    }
    Ok(Value::Bool(false))
}
