//! Lexical scoping: gives every variable its address (how many frames up, which
//! slot), or marks it as looked up in enclosing `with` sets. A name bound
//! nowhere, with no `with` around it, is an error before evaluation starts, as
//! in Nix.

use super::ast::*;
use super::parser::SyntaxError;

enum Frame<'a> {
    Names(Names<'a>),
    With,
}

/// The names of one frame in slot order, with a hash index for big frames
/// (a `let` with thousands of bindings must not make resolution quadratic).
struct Names<'a> {
    list: Vec<&'a str>,
    index: Option<std::collections::HashMap<&'a str, usize, foldhash::fast::RandomState>>,
}

impl<'a> Names<'a> {
    fn new(list: Vec<&'a str>) -> Names<'a> {
        let index =
            (list.len() > 16).then(|| list.iter().enumerate().map(|(i, n)| (*n, i)).collect());
        Names { list, index }
    }

    /// The slot of `name`; the last one when a name repeats (lambda formals
    /// and `@` may not, but this keeps shadowing order obvious).
    fn slot(&self, name: &str) -> Option<usize> {
        match &self.index {
            Some(index) => index.get(name).copied(),
            None => self.list.iter().rposition(|n| *n == name),
        }
    }
}

/// Resolve every variable in `expr`. `globals` are the names of the outermost
/// frame (the builtins visible without `builtins.`).
pub fn resolve(expr: &Expr, globals: &[&str]) -> Result<(), SyntaxError> {
    let mut frames = vec![Frame::Names(Names::new(globals.to_vec()))];
    walk(expr, &mut frames)
}

fn lookup(frames: &[Frame], var: &Var) -> Option<Address> {
    let mut under_with = false;
    for (depth, frame) in frames.iter().rev().enumerate() {
        match frame {
            Frame::Names(names) => {
                if let Some(index) = names.slot(&var.name) {
                    return Some(Address::Local {
                        depth: depth as u32,
                        index: index as u32,
                    });
                }
            }
            Frame::With => under_with = true,
        }
    }
    under_with.then_some(Address::With)
}

fn undefined(frames: &[Frame], var: &Var, span: super::span::Span) -> SyntaxError {
    let names = frames.iter().flat_map(|f| match f {
        Frame::Names(n) => n.list.clone(),
        Frame::With => Vec::new(),
    });
    let help = crate::suggest::did_you_mean(&var.name, names);
    SyntaxError {
        span,
        message: format!("undefined variable `{}`", var.name),
        help,
        labels: Vec::new(),
    }
}

fn walk<'a>(expr: &'a Expr, frames: &mut Vec<Frame<'a>>) -> Result<(), SyntaxError> {
    match &expr.kind {
        ExprKind::Int(_) | ExprKind::Float(_) | ExprKind::Path(_) | ExprKind::SearchPath(_) => {
            Ok(())
        }
        ExprKind::Var(var) => match lookup(frames, var) {
            Some(address) => {
                var.address.set(address);
                Ok(())
            }
            None => Err(undefined(frames, var, expr.span)),
        },
        ExprKind::Str(parts) => parts.iter().try_for_each(|p| match p {
            StrPart::Literal(_) => Ok(()),
            StrPart::Interpolation(e) => walk(e, frames),
        }),
        ExprKind::List(items) => items.iter().try_for_each(|e| walk(e, frames)),
        ExprKind::Attrs(set) => bindings(set, set.recursive, frames),
        ExprKind::Let(set, body) => {
            bindings(set, true, frames)?;
            frames.push(names_of(set));
            let r = walk(body, frames);
            frames.pop();
            r
        }
        ExprKind::Select {
            target,
            path,
            default,
        } => {
            walk(target, frames)?;
            keys(path, frames)?;
            default.as_ref().map_or(Ok(()), |d| walk(d, frames))
        }
        ExprKind::HasAttr { target, path } => {
            walk(target, frames)?;
            keys(path, frames)
        }
        ExprKind::Apply { func, arg } => {
            walk(func, frames)?;
            walk(arg, frames)
        }
        ExprKind::Lambda(lambda) => {
            frames.push(Frame::Names(Names::new(param_names(&lambda.param))));
            let mut r = Ok(());
            if let Param::Formals { formals, .. } = &lambda.param {
                r = formals
                    .iter()
                    .filter_map(|f| f.default.as_ref())
                    .try_for_each(|d| walk(d, frames));
            }
            let r = r.and_then(|_| walk(&lambda.body, frames));
            frames.pop();
            r
        }
        ExprKind::If {
            cond,
            then,
            otherwise,
        } => {
            walk(cond, frames)?;
            walk(then, frames)?;
            walk(otherwise, frames)
        }
        ExprKind::Assert { cond, body } => {
            walk(cond, frames)?;
            walk(body, frames)
        }
        ExprKind::With { scope, body } => {
            walk(scope, frames)?;
            frames.push(Frame::With);
            let r = walk(body, frames);
            frames.pop();
            r
        }
        ExprKind::Unary(_, e) => walk(e, frames),
        ExprKind::Binary(_, l, r) => {
            walk(l, frames)?;
            walk(r, frames)
        }
    }
}

fn param_names(param: &Param) -> Vec<&str> {
    match param {
        Param::Ident(n, _) => vec![&**n],
        Param::Formals { formals, bind, .. } => formals
            .iter()
            .map(|f| &*f.name)
            .chain(bind.iter().map(|(n, _)| &**n))
            .collect(),
    }
}

fn names_of(set: &AttrSet) -> Frame<'_> {
    Frame::Names(Names::new(set.statics.iter().map(|a| &*a.name).collect()))
}

fn keys<'a>(path: &'a [AttrKey], frames: &mut Vec<Frame<'a>>) -> Result<(), SyntaxError> {
    path.iter().try_for_each(|k| match k {
        AttrKey::Static(..) => Ok(()),
        AttrKey::Dynamic(e) => walk(e, frames),
    })
}

/// Resolve the values of a set's bindings. In a recursive set (and `let`) the
/// set's own names are in scope, except for `inherit x;`, which always reads
/// the enclosing scope.
fn bindings<'a>(
    set: &'a AttrSet,
    recursive: bool,
    frames: &mut Vec<Frame<'a>>,
) -> Result<(), SyntaxError> {
    for attr in set.statics.iter().filter(|a| a.inherited) {
        walk(&attr.value, frames)?;
    }
    if recursive {
        frames.push(names_of(set));
    }
    let mut r = set
        .statics
        .iter()
        .filter(|a| !a.inherited)
        .try_for_each(|a| walk(&a.value, frames));
    if r.is_ok() {
        r = set.dynamics.iter().try_for_each(|d| {
            walk(&d.key, frames)?;
            walk(&d.value, frames)
        });
    }
    if recursive {
        frames.pop();
    }
    r
}
