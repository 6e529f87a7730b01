//! Equality, ordering, string coercion and type checks: the value-level
//! rules shared by operators and builtins.

use super::{EvalError, EvalResult, Evaluator, NixString, Thunk, Value};
use crate::syntax::ast::StrPart;
use crate::syntax::Span;
use std::cmp::Ordering;
use std::rc::Rc;

/// Lists and sets nested deeper than this are not compared: only a value that
/// contains itself gets there (`==` on a million-deep value still works).
const MAX_COMPARED_NESTING: usize = 1_000_000;

impl Evaluator {
    pub fn type_error(
        &self,
        expected: &str,
        got: &Value,
        span: Span,
        context: Option<&str>,
    ) -> EvalError {
        let what = context.map(|c| format!(" in {c}")).unwrap_or_default();
        EvalError::fatal(
            format!(
                "expected {expected}{what}, but the value is {}",
                got.describe()
            ),
            span,
        )
    }

    pub fn expect_bool(&self, v: Value, span: Span, context: &str) -> EvalResult<bool> {
        match v {
            Value::Bool(b) => Ok(b),
            other => Err(self.type_error("a Boolean", &other, span, Some(context))),
        }
    }

    /// Deep equality with Nix's rules: ints and floats compare numerically,
    /// string contexts are ignored, derivations compare by `outPath`, functions
    /// are never equal. Elements are compared depth first, in order, from a
    /// work list rather than by recursion, so values nested a million levels
    /// deep compare too.
    pub fn equal(&mut self, a: &Value, b: &Value) -> EvalResult<bool> {
        // Each pair to compare, with how deep it lies in the values.
        let mut todo: Vec<(Thunk, Thunk, usize)> = Vec::new();
        if !self.equal_shallow(a, b, 1, &mut todo)? {
            return Ok(false);
        }
        while let Some((tx, ty, depth)) = todo.pop() {
            // Values nested deeper than any finite program makes contain themselves.
            if depth > MAX_COMPARED_NESTING {
                return Err(EvalError::fatal(
                    "stack overflow: the values compared are nested too deeply",
                    super::DUMMY,
                )
                .with_help(format!(
                    "more than {MAX_COMPARED_NESTING} levels of lists and sets; does a value contain itself?"
                )));
            }
            // Forced first, as Nix does, even when both sides are one thunk.
            let vx = self.force(&tx)?;
            let vy = self.force(&ty)?;
            if tx.same(&ty) {
                continue;
            }
            if !self.equal_shallow(&vx, &vy, depth + 1, &mut todo)? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Compare `a` and `b` as far as they are not lists or sets; for those,
    /// push the element pairs still to compare onto `todo` (first on top).
    fn equal_shallow(
        &mut self,
        a: &Value,
        b: &Value,
        depth: usize,
        todo: &mut Vec<(Thunk, Thunk, usize)>,
    ) -> EvalResult<bool> {
        Ok(match (a, b) {
            (Value::Null, Value::Null) => true,
            (Value::Bool(x), Value::Bool(y)) => x == y,
            (Value::Int(x), Value::Int(y)) => x == y,
            (Value::Int(x), Value::Float(y)) => (*x as f64) == *y,
            (Value::Float(x), Value::Int(y)) => *x == (*y as f64),
            (Value::Float(x), Value::Float(y)) => x == y,
            (Value::String(x), Value::String(y)) => x.text == y.text,
            (Value::Path(x), Value::Path(y)) => x == y,
            // As in Nix, elements are forced before the same element on both sides
            // counts as equal, and two lists are compared even when they are one:
            // `let l = [ (throw "x") ]; in l == l` throws.
            (Value::List(x), Value::List(y)) => {
                if x.len() != y.len() {
                    return Ok(false);
                }
                todo.extend(
                    x.iter()
                        .cloned()
                        .zip(y.iter().cloned())
                        .map(|(tx, ty)| (tx, ty, depth))
                        .rev(),
                );
                true
            }
            (Value::Attrs(x), Value::Attrs(y)) => {
                if self.is_derivation(x)? && self.is_derivation(y)? {
                    if let (Some(px), Some(py)) = (x.get("outPath"), y.get("outPath")) {
                        todo.push((px.value.clone(), py.value.clone(), depth));
                        return Ok(true);
                    }
                }
                if x.len() != y.len() {
                    return Ok(false);
                }
                for (ax, ay) in x.iter().zip(y.iter()) {
                    if ax.name != ay.name {
                        return Ok(false);
                    }
                }
                todo.extend(
                    x.iter()
                        .zip(y.iter())
                        .map(|(ax, ay)| (ax.value.clone(), ay.value.clone(), depth))
                        .rev(),
                );
                true
            }
            _ => false,
        })
    }

    pub fn is_derivation(&mut self, attrs: &super::Attrs) -> EvalResult<bool> {
        match attrs.get("type") {
            Some(t) => {
                let t = t.value.clone();
                Ok(matches!(self.force(&t)?, Value::String(s) if &*s.text == "derivation"))
            }
            None => Ok(false),
        }
    }

    /// `a < b` for numbers, strings, paths and lists (lexicographically).
    pub fn less_than(&mut self, a: &Value, b: &Value, span: Span) -> EvalResult<bool> {
        Ok(self.compare(a, b, span)? == Ordering::Less)
    }

    pub fn compare(&mut self, a: &Value, b: &Value, span: Span) -> EvalResult<Ordering> {
        Ok(match (a, b) {
            (Value::Int(x), Value::Int(y)) => x.cmp(y),
            (Value::Int(x), Value::Float(y)) => {
                (*x as f64).partial_cmp(y).unwrap_or(Ordering::Equal)
            }
            (Value::Float(x), Value::Int(y)) => {
                x.partial_cmp(&(*y as f64)).unwrap_or(Ordering::Equal)
            }
            (Value::Float(x), Value::Float(y)) => x.partial_cmp(y).unwrap_or(Ordering::Equal),
            (Value::String(x), Value::String(y)) => x.text.as_bytes().cmp(y.text.as_bytes()),
            (Value::Path(x), Value::Path(y)) => x.as_os_str().cmp(y.as_os_str()),
            (Value::List(x), Value::List(y)) => {
                for (tx, ty) in x.iter().zip(y.iter()) {
                    let vx = self.force(tx)?;
                    let vy = self.force(ty)?;
                    if self.equal(&vx, &vy)? {
                        continue;
                    }
                    return self.nested(span, |ev| ev.compare(&vx, &vy, span));
                }
                x.len().cmp(&y.len())
            }
            _ => {
                return Err(EvalError::fatal(
                    format!("cannot compare {} with {}", a.describe(), b.describe()),
                    span,
                ))
            }
        })
    }

    /// Nix's string coercion. `more` is `toString`'s extended form, which also
    /// accepts numbers, Booleans, null and lists.
    pub fn coerce_to_string(&mut self, v: &Value, span: Span, more: bool) -> EvalResult<NixString> {
        match v {
            Value::String(s) => Ok(s.clone()),
            Value::Path(p) => Ok(NixString::plain(p.to_string_lossy().as_ref())),
            Value::Attrs(attrs) => {
                if let Some(f) = attrs.get("__toString") {
                    let f = f.value.clone();
                    let f = self.force(&f)?;
                    let r = self.call_with(&f, vec![v.clone()], span)?;
                    return self.coerce_to_string(&r, span, more);
                }
                if let Some(p) = attrs.get("outPath") {
                    let p = p.value.clone();
                    let p = self.force(&p)?;
                    return self.coerce_to_string(&p, span, more);
                }
                Err(EvalError::fatal("cannot coerce a set to a string", span)
                    .with_help("only sets with `__toString` or `outPath` turn into strings"))
            }
            Value::Int(n) if more => Ok(NixString::plain(n.to_string())),
            Value::Float(f) if more => Ok(NixString::plain(format_float_fixed(*f))),
            Value::Bool(b) if more => Ok(NixString::plain(if *b { "1" } else { "" })),
            Value::Null if more => Ok(NixString::plain("")),
            Value::List(items) if more => {
                let mut out = String::new();
                let mut ctx = super::Context::default();
                for (i, t) in items.iter().enumerate() {
                    let item = self.force(t)?;
                    let s = self.coerce_to_string(&item, span, more)?;
                    if i > 0 && !(matches!(item, Value::List(ref l) if l.is_empty())) {
                        out.push(' ');
                    }
                    out.push_str(&s.text);
                    ctx.extend(&s.context);
                }
                Ok(NixString::with_context(out, ctx))
            }
            other => Err(EvalError::fatal(
                format!("cannot coerce {} to a string", other.describe()),
                span,
            )
            .with_help(match other {
                Value::Int(_) | Value::Float(_) | Value::Bool(_) | Value::Null | Value::List(_) => {
                    "use `toString` to turn it into a string"
                }
                _ => {
                    "only strings, paths and sets with `outPath` or `__toString` turn into strings"
                }
            })),
        }
    }

    pub(super) fn string(&mut self, parts: &[StrPart], env: &Rc<super::Env>) -> EvalResult<Value> {
        let literal: usize = parts
            .iter()
            .map(|p| match p {
                StrPart::Literal(s) => s.len(),
                StrPart::Interpolation(_) => 16,
            })
            .sum();
        let mut out = String::with_capacity(literal);
        let mut ctx = super::Context::default();
        for part in parts {
            match part {
                StrPart::Literal(s) => out.push_str(s),
                StrPart::Interpolation(e) => {
                    let v = self.eval(e, env)?;
                    let s = self.coerce_to_string(&v, e.span, false)?;
                    out.push_str(&s.text);
                    ctx.extend(&s.context);
                }
            }
        }
        Ok(Value::String(NixString::with_context(out, ctx)))
    }
}

/// C's `%f`: what Nix's `toString` does to a float.
pub fn format_float_fixed(f: f64) -> String {
    format!("{f:.6}")
}
