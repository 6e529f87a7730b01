//! What is at a place in a recipe: the variable, attribute selection, key or
//! path under the cursor, the names in scope there, and the schema field
//! path of the set around it. The editor's text is often half-typed, so it
//! is parsed as it is, else with a placeholder at the cursor.
//!
//! Values behind names (`lib` in `lib.fetchers.`) are found by evaluating
//! the closed expression a name is bound to, in a fresh evaluator: it gives
//! both the attribute names (completion) and where each was defined (go to
//! definition, the comment above it for hover).

use crate::eval::{Evaluator, Value};
use crate::syntax::ast::{AttrKey, AttrSet, Expr, ExprKind, Name, Param, StrPart};
use crate::syntax::{FileId, Span};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;

/// A name bound around the cursor: `let`, `rec` set or function argument.
#[derive(Clone)]
pub struct Binder {
    pub name: Name,
    /// Where the name is defined.
    pub span: Span,
    /// What it is bound to, for `let` and `rec` bindings.
    pub value: Option<Rc<Expr>>,
}

/// What the cursor is on.
pub enum At {
    Nothing,
    Var(Name, Span),
    /// `target.k1.k2`: the keys up to the one under the cursor.
    Select {
        target: Expr,
        keys: Vec<Name>,
        key_span: Span,
    },
    /// An attribute being defined, and its schema path when in a bottle.
    Key {
        name: Name,
        span: Span,
        field: Option<Vec<String>>,
    },
    Path(String, Span),
    SearchPath(String, Span),
}

/// The result of looking at one place of a document.
pub struct Found {
    pub at: At,
    /// Names in scope, outermost first (later ones shadow).
    pub binders: Vec<Binder>,
    /// The scopes of the `with` expressions around the cursor, outermost
    /// first, and how many binders were in scope at each.
    pub withs: Vec<(Rc<Expr>, usize)>,
    /// The schema path of the innermost set around the cursor, if it is in
    /// a bottle (`[]` for the bottle itself, `["egress", "routes[]"]`).
    pub field: Option<Vec<String>>,
}

/// Parse `text` for a look at `offset`: as it is, else with a placeholder
/// at the cursor so a half-typed `lib.` or `{ na` still parses.
pub fn parse_at(text: &str, offset: usize) -> Option<Expr> {
    let offset = offset.min(text.len());
    let (before, after) = text.split_at(offset);
    for patch in [
        "",
        "x",
        " = null;",
        "x = null;",
        "x;",
        " = null; }",
        "x = null; }",
    ] {
        let candidate = format!("{before}{patch}{after}");
        if let Ok(expr) = crate::syntax::parse(FileId(0), &candidate) {
            return Some(expr);
        }
    }
    None
}

/// Look at `offset` in a parsed document.
pub fn look(expr: &Expr, offset: usize) -> Found {
    let mut found = Found {
        at: At::Nothing,
        binders: Vec::new(),
        withs: Vec::new(),
        field: None,
    };
    visit(expr, offset as u32, &mut found, None);
    found
}

fn contains(span: Span, off: u32) -> bool {
    span.start <= off && off <= span.end
}

/// Whether the cursor is in `e`, counting the keys of nested sets made from
/// `a.b.c = …` paths (whose set spans do not always cover them).
fn covers(e: &Expr, off: u32) -> bool {
    if contains(e.span, off) {
        return true;
    }
    match &e.kind {
        ExprKind::Attrs(set) => set
            .statics
            .iter()
            .any(|a| contains(a.span, off) || (!a.inherited && covers(&a.value, off))),
        _ => false,
    }
}

fn with_key(field: &Option<Vec<String>>, key: &str) -> Option<Vec<String>> {
    field.as_ref().map(|f| {
        let mut f = f.clone();
        f.push(key.to_string());
        f
    })
}

/// A set that is a bottle: it has one of a bottle's own fields.
fn is_bottle(set: &AttrSet) -> bool {
    ["agent", "image", "name"]
        .iter()
        .any(|k| set.find(k).is_some())
}

/// `lib.bottle` or `bottle`: a function whose argument is a bottle.
pub fn makes_bottle(func: &Expr) -> bool {
    match &func.kind {
        ExprKind::Var(v) => &*v.name == "bottle",
        ExprKind::Select { path, .. } => {
            matches!(path.last(), Some(AttrKey::Static(n, _)) if &**n == "bottle")
        }
        _ => false,
    }
}

fn bind_set(set: &AttrSet, found: &mut Found) {
    for a in &set.statics {
        found.binders.push(Binder {
            name: a.name.clone(),
            span: a.span,
            value: Some(a.value.clone()),
        });
    }
}

fn visit(e: &Expr, off: u32, found: &mut Found, field: Option<Vec<String>>) {
    match &e.kind {
        ExprKind::Var(v) => found.at = At::Var(v.name.clone(), e.span),
        ExprKind::Path(p) => found.at = At::Path(p.clone(), e.span),
        ExprKind::SearchPath(p) => found.at = At::SearchPath(p.clone(), e.span),
        ExprKind::Int(_) | ExprKind::Float(_) => {}
        ExprKind::Str(parts) => {
            for p in parts {
                if let StrPart::Interpolation(inner) = p {
                    if covers(inner, off) {
                        visit(inner, off, found, None);
                    }
                }
            }
        }
        ExprKind::Select {
            target,
            path,
            default,
        } => {
            if covers(target, off) {
                return visit(target, off, found, None);
            }
            if let Some(d) = default.as_ref().filter(|d| covers(d, off)) {
                return visit(d, off, found, field);
            }
            select_keys(target, path, off, found);
        }
        ExprKind::HasAttr { target, path } => {
            if covers(target, off) {
                return visit(target, off, found, None);
            }
            select_keys(target, path, off, found);
        }
        ExprKind::Attrs(set) => {
            let field = field.or_else(|| is_bottle(set).then(Vec::new));
            found.field = field.clone();
            if set.recursive {
                bind_set(set, found);
            }
            for a in &set.statics {
                if contains(a.span, off) {
                    found.at = At::Key {
                        name: a.name.clone(),
                        span: a.span,
                        field: with_key(&field, &a.name),
                    };
                    return;
                }
                if covers(&a.value, off) {
                    let inner = if a.inherited {
                        None
                    } else {
                        with_key(&field, &a.name)
                    };
                    return visit(&a.value, off, found, inner);
                }
            }
            for d in &set.dynamics {
                if covers(&d.key, off) {
                    return visit(&d.key, off, found, None);
                }
                if covers(&d.value, off) {
                    return visit(&d.value, off, found, None);
                }
            }
        }
        ExprKind::Let(set, body) => {
            bind_set(set, found);
            for a in &set.statics {
                if contains(a.span, off) {
                    found.at = At::Key {
                        name: a.name.clone(),
                        span: a.span,
                        field: None,
                    };
                    return;
                }
                if covers(&a.value, off) {
                    return visit(&a.value, off, found, None);
                }
            }
            if covers(body, off) {
                visit(body, off, found, field);
            }
        }
        ExprKind::List(items) => {
            let field = field.map(|mut f| {
                match f.last_mut() {
                    Some(last) => last.push_str("[]"),
                    None => f.push("[]".into()),
                }
                f
            });
            if let Some(item) = items.iter().find(|i| covers(i, off)) {
                visit(item, off, found, field);
            }
        }
        ExprKind::Apply { func, arg } => {
            if covers(arg, off) {
                let field = makes_bottle(func).then(Vec::new);
                visit(arg, off, found, field);
            } else if covers(func, off) {
                visit(func, off, found, None);
            }
        }
        ExprKind::Lambda(lambda) => {
            match &lambda.param {
                Param::Ident(name, span) => found.binders.push(Binder {
                    name: name.clone(),
                    span: *span,
                    value: None,
                }),
                Param::Formals { formals, bind, .. } => {
                    for f in formals {
                        found.binders.push(Binder {
                            name: f.name.clone(),
                            span: f.span,
                            value: None,
                        });
                    }
                    if let Some((name, span)) = bind {
                        found.binders.push(Binder {
                            name: name.clone(),
                            span: *span,
                            value: None,
                        });
                    }
                    for f in formals {
                        if let Some(d) = f.default.as_ref().filter(|d| covers(d, off)) {
                            return visit(d, off, found, None);
                        }
                    }
                }
            }
            if covers(&lambda.body, off) {
                visit(&lambda.body, off, found, None);
            }
        }
        ExprKind::If {
            cond,
            then,
            otherwise,
        } => {
            if covers(cond, off) {
                visit(cond, off, found, None);
            } else if covers(then, off) {
                visit(then, off, found, field);
            } else if covers(otherwise, off) {
                visit(otherwise, off, found, field);
            }
        }
        ExprKind::Assert { cond, body } => {
            if covers(cond, off) {
                visit(cond, off, found, None);
            } else if covers(body, off) {
                visit(body, off, found, field);
            }
        }
        ExprKind::With { scope, body } => {
            if covers(scope, off) {
                visit(scope, off, found, None);
            } else if covers(body, off) {
                found.withs.push((scope.clone(), found.binders.len()));
                visit(body, off, found, field);
            }
        }
        ExprKind::Unary(_, inner) => {
            if covers(inner, off) {
                visit(inner, off, found, None);
            }
        }
        ExprKind::Binary(_, l, r) => {
            // `a // { … }` and `routes ++ [ … ]` keep the field path.
            if covers(l, off) {
                visit(l, off, found, field);
            } else if covers(r, off) {
                visit(r, off, found, field);
            }
        }
    }
}

fn select_keys(target: &Expr, path: &[AttrKey], off: u32, found: &mut Found) {
    let mut keys = Vec::new();
    for k in path {
        match k {
            AttrKey::Static(name, span) => {
                keys.push(name.clone());
                if contains(*span, off) {
                    found.at = At::Select {
                        target: target.clone(),
                        keys,
                        key_span: *span,
                    };
                    return;
                }
            }
            AttrKey::Dynamic(e) => {
                if covers(e, off) {
                    visit(e, off, found, None);
                }
                return;
            }
        }
    }
}

/// The schema fields that may go in the set at `field` (a path as
/// [`Found::field`] gives it), from the one table of field docs.
pub fn fields_under(field: &[String]) -> Vec<(&'static str, &'static str)> {
    let mut out: Vec<(&'static str, &'static str)> = Vec::new();
    for (pattern, doc) in super::reference::FIELDS {
        let segs: Vec<&str> = pattern.split('.').collect();
        if segs.len() != field.len() + 1 {
            continue;
        }
        let parent = segs[..field.len()].join(".");
        if !super::reference::path_matches(&parent, &field.join(".")) && !field.is_empty() {
            continue;
        }
        let last = segs[field.len()];
        if last.starts_with('<') {
            continue;
        }
        let last = last.trim_end_matches("[]");
        if !out.iter().any(|(n, _)| *n == last) {
            out.push((last, doc));
        }
    }
    out
}

/// Where a value's parts were defined: a place in a file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Place {
    pub path: PathBuf,
    pub start: usize,
    pub end: usize,
}

/// A fresh evaluator for one question about a document, which knows how to
/// evaluate pieces of it and where their values were defined.
pub struct Resolver<'a> {
    pub ev: Evaluator,
    doc_path: &'a Path,
    doc_text: &'a str,
    /// Pieces of the document evaluated on their own: their file id and the
    /// document offset they start at.
    pieces: HashMap<FileId, usize>,
}

/// What a name or selection stands for.
pub enum Resolved {
    Value(Value),
    /// A set written in the document that cannot be evaluated on its own
    /// (its values use other names); its keys are still known.
    Set(Rc<Expr>),
}

impl<'a> Resolver<'a> {
    pub fn new(
        search_path: Vec<crate::eval::SearchPathEntry>,
        doc_path: &'a Path,
        doc_text: &'a str,
    ) -> Resolver<'a> {
        Resolver {
            ev: Evaluator::new(search_path),
            doc_path,
            doc_text,
            pieces: HashMap::new(),
        }
    }

    /// Evaluate the document's text at `span` on its own, if it uses no
    /// names but the builtins.
    fn closed(&mut self, span: Span) -> Option<Value> {
        let text = self.doc_text.get(span.start as usize..span.end as usize)?;
        let (file, expr) = self
            .ev
            .parse(
                self.doc_path.display().to_string(),
                Some(self.doc_path.to_path_buf()),
                text.into(),
            )
            .ok()?;
        self.pieces.insert(file, span.start as usize);
        let env = self.ev.globals().clone();
        self.ev.eval(&expr, &env).ok()
    }

    /// What `expr` (in the document) stands for, following names bound
    /// around it.
    pub fn resolve(&mut self, expr: &Expr, binders: &[Binder], depth: usize) -> Option<Resolved> {
        if depth > 16 {
            return None;
        }
        match &expr.kind {
            ExprKind::Var(v) => match binders.iter().rposition(|b| b.name == v.name) {
                Some(i) => {
                    let value = binders[i].value.clone()?;
                    self.resolve(&value, binders, depth + 1)
                }
                None => self.closed(expr.span).map(Resolved::Value),
            },
            ExprKind::Select {
                target,
                path,
                default: None,
            } => {
                let mut r = self.resolve(target, binders, depth + 1)?;
                for k in path {
                    let AttrKey::Static(name, _) = k else {
                        return None;
                    };
                    r = self.select(r, name, binders, depth)?;
                }
                Some(r)
            }
            ExprKind::Attrs(_) => match self.closed(expr.span) {
                Some(v) => Some(Resolved::Value(v)),
                None => Some(Resolved::Set(Rc::new(expr.clone()))),
            },
            ExprKind::Let(_, body) => self
                .closed(expr.span)
                .map(Resolved::Value)
                .or_else(|| self.resolve(body, binders, depth + 1)),
            _ => self.closed(expr.span).map(Resolved::Value),
        }
    }

    /// The attribute `name` of what `r` stands for.
    pub fn select(
        &mut self,
        r: Resolved,
        name: &str,
        binders: &[Binder],
        depth: usize,
    ) -> Option<Resolved> {
        match r {
            Resolved::Value(Value::Attrs(attrs)) => {
                let a = attrs.get(name)?;
                let t = a.value.clone();
                self.ev.force(&t).ok().map(Resolved::Value)
            }
            Resolved::Value(_) => None,
            Resolved::Set(expr) => {
                let ExprKind::Attrs(set) = &expr.kind else {
                    return None;
                };
                let value = set.find(name)?.value.clone();
                self.resolve(&value, binders, depth + 1)
            }
        }
    }

    /// The attribute names of what `r` stands for, and where each was defined.
    pub fn attributes(&mut self, r: &Resolved) -> Vec<(String, Option<Place>)> {
        match r {
            Resolved::Value(Value::Attrs(attrs)) => attrs
                .iter()
                .map(|a| (a.name.to_string(), a.span.and_then(|s| self.place(s))))
                .collect(),
            Resolved::Value(_) => Vec::new(),
            Resolved::Set(expr) => match &expr.kind {
                ExprKind::Attrs(set) => set
                    .statics
                    .iter()
                    .map(|a| (a.name.to_string(), Some(self.doc_place(a.span))))
                    .collect(),
                _ => Vec::new(),
            },
        }
    }

    fn doc_place(&self, span: Span) -> Place {
        Place {
            path: self.doc_path.to_path_buf(),
            start: span.start as usize,
            end: span.end as usize,
        }
    }

    /// A span of this evaluation as a place in a file.
    pub fn place(&self, span: Span) -> Option<Place> {
        if span.file.0 == u32::MAX {
            return None;
        }
        if let Some(base) = self.pieces.get(&span.file) {
            return Some(Place {
                path: self.doc_path.to_path_buf(),
                start: base + span.start as usize,
                end: base + span.end as usize,
            });
        }
        let src = self.ev.sources.get(span.file);
        Some(Place {
            path: src.path.clone()?,
            start: span.start as usize,
            end: span.end as usize,
        })
    }
}

/// The file a path literal or `<…>` lookup names, if it exists.
pub fn imported_file(
    at: &At,
    doc_path: &Path,
    search_path: &[crate::eval::SearchPathEntry],
) -> Option<PathBuf> {
    let file = match at {
        At::Path(p, _) => {
            let p = if let Some(rest) = p.strip_prefix("~/") {
                PathBuf::from(std::env::var_os("HOME")?).join(rest)
            } else {
                doc_path.parent()?.join(p)
            };
            crate::eval::io::normalize(&p)
        }
        At::SearchPath(p, _) => {
            let (first, rest) = p.split_once('/').unwrap_or((p.as_str(), ""));
            search_path.iter().find_map(|entry| {
                let candidate = if entry.prefix.is_empty() {
                    entry.dir.join(p)
                } else if entry.prefix == first {
                    entry.dir.join(rest)
                } else {
                    return None;
                };
                candidate.exists().then_some(candidate)
            })?
        }
        _ => return None,
    };
    if file.is_dir() {
        let nix = file.join("default.nix");
        return Some(if nix.exists() {
            nix
        } else {
            file.join("default.bottle")
        });
    }
    file.exists().then_some(file)
}

/// `offset`, or the nearest character boundary before it, within `text`.
pub fn floor_boundary(text: &str, offset: usize) -> usize {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}

/// The comment lines (`# …`) right above the line of `offset`: the doc a
/// stdlib or recipe author wrote for a binding.
pub fn comment_above(text: &str, offset: usize) -> Option<String> {
    let line_start = text[..floor_boundary(text, offset)]
        .rfind('\n')
        .map_or(0, |i| i + 1);
    let mut lines: Vec<&str> = Vec::new();
    for line in text[..line_start].lines().rev() {
        match line.trim_start().strip_prefix('#') {
            Some(c) => lines.push(c.strip_prefix(' ').unwrap_or(c)),
            None => break,
        }
    }
    if lines.is_empty() {
        return None;
    }
    lines.reverse();
    Some(lines.join("\n"))
}

/// An attribute name as written in Nix: bare when it is an identifier,
/// else quoted.
pub fn attr_name(name: &str) -> String {
    let mut chars = name.chars();
    let bare = matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '\'' | '-'))
        && !KEYWORDS.contains(&name);
    if bare {
        name.to_string()
    } else {
        serde_json::to_string(name)
            .expect("strings serialize")
            .replace("${", "\\${")
    }
}

/// The words an identifier cannot be.
pub const KEYWORDS: &[&str] = &[
    "if", "then", "else", "assert", "with", "let", "in", "rec", "inherit", "or",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn look_at(text: &str, needle: &str, delta: usize) -> Found {
        let offset = text.find(needle).expect("needle in text") + delta;
        let expr = parse_at(text, offset).expect("parses with a placeholder");
        look(&expr, offset)
    }

    fn field_of(found: &Found) -> Option<Vec<String>> {
        match &found.at {
            At::Key { field, .. } => field.clone(),
            _ => None,
        }
    }

    #[test]
    fn a_half_typed_key_in_a_bottle_is_a_field() {
        let text = "{ name = \"x\"; ag }";
        let found = look_at(text, "ag }", 2);
        assert_eq!(field_of(&found), Some(vec!["ag".to_string()]));
    }

    #[test]
    fn a_key_in_a_route_has_its_schema_path() {
        let text = "lib: lib.bottle { egress.routes = [ { host = \"a\"; } ]; }";
        let found = look_at(text, "host", 1);
        assert_eq!(
            field_of(&found),
            Some(vec!["egress".into(), "routes[]".into(), "host".into()])
        );
    }

    #[test]
    fn names_in_scope_come_from_let_and_arguments() {
        let text = "{ pkgs ? 1 }: let a = 1; b = x: x + ; in b a";
        let found = look_at(text, "x + ", 4);
        let names: Vec<&str> = found.binders.iter().map(|b| &*b.name).collect();
        assert_eq!(names, ["pkgs", "a", "b", "x"]);
        assert!(matches!(found.at, At::Var(..)));
    }

    #[test]
    fn fields_under_a_path_come_from_the_table() {
        let names = |path: &[&str]| -> Vec<&str> {
            let path: Vec<String> = path.iter().map(|s| s.to_string()).collect();
            fields_under(&path).into_iter().map(|(n, _)| n).collect()
        };
        assert!(names(&[]).contains(&"agent") && names(&[]).contains(&"egress"));
        assert!(names(&["egress", "routes[]"]).contains(&"inspect"));
        assert_eq!(names(&["git"]), ["user"]);
        assert!(names(&["git", "origin"]).contains(&"push"));
        assert!(names(&["agent"]).contains(&"workdir"));
    }

    #[test]
    fn the_comment_above_a_binding_is_its_doc() {
        let text = "let\n  # Doubles.\n  # Twice.\n  f = x: x * 2;\nin f";
        let at = text.find("f =").unwrap();
        assert_eq!(comment_above(text, at).as_deref(), Some("Doubles.\nTwice."));
        assert_eq!(comment_above(text, text.find("in f").unwrap()), None);
    }

    #[test]
    fn attribute_names_are_quoted_when_they_must_be() {
        assert_eq!(attr_name("claude-code"), "claude-code");
        assert_eq!(attr_name("foldl'"), "foldl'");
        assert_eq!(attr_name("a.b"), "\"a.b\"");
        assert_eq!(attr_name("in"), "\"in\"");
    }
}
