//! A fully evaluated value, as the checker sees it: plain data with the
//! recipe span that produced each part and the derivations each string
//! mentions. The evaluator's values are forced into a `Node` tree once
//! (`from_value`), JSON becomes one too (`from_json`, for tests and tools),
//! and the checker only ever reads `Node`s.

use crate::eval::{EvalResult, Evaluator, Value};
use crate::store::Derivation;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

pub use crate::syntax::Span;

#[derive(Clone, Debug)]
pub struct Node {
    /// Where the value was defined, when it came from a recipe.
    pub span: Option<Span>,
    pub value: NodeValue,
}

#[derive(Clone, Debug)]
pub enum NodeValue {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    /// A string and the derivations it mentions (its string context).
    Str(String, Vec<Arc<Derivation>>),
    /// A path literal, already absolute on this host.
    Path(PathBuf),
    List(Vec<Node>),
    Attrs(BTreeMap<String, Node>),
    /// A derivation value (`writeText`, `toTOML`, …).
    Derivation(Arc<Derivation>),
    /// A function or anything else data cannot hold; the text names it.
    Opaque(&'static str),
}

impl Node {
    pub fn new(value: NodeValue, span: Option<Span>) -> Node {
        Node { span, value }
    }

    /// What kind of value this is, in the recipe's words.
    pub fn type_name(&self) -> &'static str {
        match &self.value {
            NodeValue::Null => "null",
            NodeValue::Bool(_) => "a bool",
            NodeValue::Int(_) => "an int",
            NodeValue::Float(_) => "a float",
            NodeValue::Str(..) => "a string",
            NodeValue::Path(_) => "a path",
            NodeValue::List(_) => "a list",
            NodeValue::Attrs(_) => "an attribute set",
            NodeValue::Derivation(_) => "a derivation",
            NodeValue::Opaque(what) => what,
        }
    }

    /// A JSON value as a node without spans.
    pub fn from_json(json: &serde_json::Value) -> Node {
        use serde_json::Value;
        let value = match json {
            Value::Null => NodeValue::Null,
            Value::Bool(b) => NodeValue::Bool(*b),
            Value::Number(n) => match n.as_i64() {
                Some(i) => NodeValue::Int(i),
                None => NodeValue::Float(n.as_f64().unwrap_or(f64::NAN)),
            },
            Value::String(s) => NodeValue::Str(s.clone(), Vec::new()),
            Value::Array(items) => NodeValue::List(items.iter().map(Node::from_json).collect()),
            Value::Object(map) => NodeValue::Attrs(
                map.iter()
                    .map(|(k, v)| (k.clone(), Node::from_json(v)))
                    .collect(),
            ),
        };
        Node::new(value, None)
    }
}

/// What a value that failed to evaluate is, in a lenient tree
/// ([`Node::from_value_lenient`]): the checker's "expected …, found" errors
/// about it end with these words, and `bottle check` drops them, since the
/// evaluation error already says what is wrong there.
pub const FAILED: &str = "a value that failed to evaluate";

/// Where a lenient conversion keeps the errors it met, each with the
/// attribute path of the value that failed (`dev.egress.routes[0].host`).
#[derive(Default)]
pub struct Failures {
    pub errors: Vec<(String, crate::eval::EvalError)>,
    path: String,
}

impl Failures {
    /// Run `f` one key deeper in the path.
    fn under<T>(&mut self, key: std::fmt::Arguments<'_>, f: impl FnOnce(&mut Self) -> T) -> T {
        let len = self.path.len();
        use std::fmt::Write;
        let _ = self.path.write_fmt(key);
        let r = f(self);
        self.path.truncate(len);
        r
    }
}

impl Node {
    /// Force an evaluated value completely into a node tree, keeping each
    /// attribute's definition span and mapping string contexts and
    /// derivation values back to their derivations.
    pub fn from_value(ev: &mut Evaluator, value: &Value, span: Option<Span>) -> EvalResult<Node> {
        Node::build(ev, value, span, &mut None)
    }

    /// As [`Node::from_value`], but a part that fails to evaluate does not
    /// end the walk: its error is kept in `failed` (under the attribute path
    /// `at` of `value`) and the part becomes an opaque [`FAILED`] node, so
    /// one pass finds every error of a recipe.
    pub fn from_value_lenient(
        ev: &mut Evaluator,
        value: &Value,
        span: Option<Span>,
        at: &str,
        failed: &mut Failures,
    ) -> Node {
        failed.path = at.to_string();
        let mut lenient = Some(failed);
        Node::build(ev, value, span, &mut lenient)
            .expect("lenient conversion: every error is caught at its thunk")
    }

    fn build(
        ev: &mut Evaluator,
        value: &Value,
        span: Option<Span>,
        failed: &mut Option<&mut Failures>,
    ) -> EvalResult<Node> {
        // Record an error leniently (as a FAILED node), else return it.
        fn fail(
            e: crate::eval::EvalError,
            at: Option<Span>,
            failed: &mut Option<&mut Failures>,
        ) -> EvalResult<Node> {
            match failed {
                Some(f) => {
                    let path = f.path.clone();
                    f.errors.push((path, e));
                    Ok(Node::new(NodeValue::Opaque(FAILED), at))
                }
                None => Err(e),
            }
        }
        // Force one part, under `key` in the path when lenient.
        fn part(
            ev: &mut Evaluator,
            t: &crate::eval::Thunk,
            at: Option<Span>,
            key: std::fmt::Arguments<'_>,
            failed: &mut Option<&mut Failures>,
        ) -> EvalResult<Node> {
            let mut go = |failed: &mut Option<&mut Failures>| match ev.force(t) {
                Ok(v) => Node::build(ev, &v, at, failed),
                Err(e) => fail(e, at, failed),
            };
            match failed {
                Some(f) => f.under(key, |f| go(&mut Some(f))),
                None => go(&mut None),
            }
        }
        let node = match value {
            Value::Null => NodeValue::Null,
            Value::Bool(b) => NodeValue::Bool(*b),
            Value::Int(i) => NodeValue::Int(*i),
            Value::Float(f) => NodeValue::Float(*f),
            Value::String(s) => NodeValue::Str(
                s.text.to_string(),
                s.context
                    .iter()
                    .filter_map(|p| ev.derivation_at(p))
                    .collect(),
            ),
            Value::Path(p) => NodeValue::Path(p.as_ref().clone()),
            Value::List(items) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, t) in items.iter().enumerate() {
                    out.push(part(
                        ev,
                        t,
                        t.origin().or(span),
                        format_args!("[{i}]"),
                        failed,
                    )?);
                }
                NodeValue::List(out)
            }
            Value::Attrs(attrs) => {
                let drv = match derivation_of(ev, attrs) {
                    Ok(drv) => drv,
                    Err(e) => return fail(e, span, failed),
                };
                if let Some(drv) = drv {
                    return Ok(Node::new(NodeValue::Derivation(drv), span));
                }
                let mut out = BTreeMap::new();
                for attr in attrs.iter() {
                    let at = attr.span.or(attr.value.origin()).or(span);
                    let top = failed.as_ref().is_some_and(|f| f.path.is_empty());
                    let dot = if top { "" } else { "." };
                    let key = format_args!("{dot}{}", attr.name);
                    out.insert(
                        attr.name.to_string(),
                        part(ev, &attr.value, at, key, failed)?,
                    );
                }
                NodeValue::Attrs(out)
            }
            Value::Lambda(_) | Value::Builtin(_) => NodeValue::Opaque("a function"),
        };
        Ok(Node::new(node, span))
    }
}

/// The derivation an attribute set stands for, if it is one bottle made.
fn derivation_of(
    ev: &mut Evaluator,
    attrs: &crate::eval::Attrs,
) -> EvalResult<Option<Arc<Derivation>>> {
    let (Some(kind), Some(out)) = (attrs.get("type"), attrs.get("outPath")) else {
        return Ok(None);
    };
    match (ev.force(&kind.value)?, ev.force(&out.value)?) {
        (Value::String(k), Value::String(p)) if &*k.text == "derivation" => {
            Ok(ev.derivation_at(&p.text))
        }
        _ => Ok(None),
    }
}
