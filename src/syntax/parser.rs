//! pest pairs → typed AST. Also: escapes and indented-string stripping,
//! merging of nested attribute paths, and syntax errors phrased for people.

use super::ast::*;
use super::span::{FileId, Span};
use pest::iterators::{Pair, Pairs};
use pest::Parser as _;
use std::rc::Rc;

#[derive(pest_derive::Parser)]
#[grammar = "../grammar/bottle.pest"]
struct Grammar;

/// Deeper bracket nesting than this is refused before parsing: no real recipe
/// comes near it, and refusing early keeps parser recursion bounded.
pub const MAX_NESTING: usize = 2_000;

/// A syntax error: where, what was expected, and a hint.
#[derive(Debug, Clone)]
pub struct SyntaxError {
    pub span: Span,
    pub message: String,
    pub help: Option<String>,
    /// Other places the error involves, such as an earlier definition.
    pub labels: Vec<(Span, String)>,
}

/// Parse one source file into an expression.
pub fn parse(file: FileId, text: &str) -> Result<Expr, SyntaxError> {
    check_nesting(file, text)?;
    let mut pairs = Grammar::parse(Rule::file, text).map_err(|e| syntax_error(file, text, e))?;
    let file_pair = pairs
        .next()
        .expect("grammar: `file` always yields one pair");
    let expr_pair = file_pair
        .into_inner()
        .next()
        .expect("grammar: `file` holds an expression");
    Builder { file, text }.expr(expr_pair)
}

fn check_nesting(file: FileId, text: &str) -> Result<(), SyntaxError> {
    let bytes = text.as_bytes();
    let (mut depth, mut i) = (0usize, 0usize);
    while i < bytes.len() {
        match bytes[i] {
            b'(' | b'[' | b'{' => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Err(SyntaxError {
                        span: Span::new(file, i, i + 1),
                        message: format!(
                            "expressions are nested more than {MAX_NESTING} levels deep"
                        ),
                        help: Some("split the expression into named `let` bindings".into()),
                        labels: Vec::new(),
                    });
                }
            }
            b')' | b']' | b'}' => depth = depth.saturating_sub(1),
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
            }
            _ => {}
        }
        i += 1;
    }
    Ok(())
}

fn describe(rule: &Rule) -> Option<&'static str> {
    use Rule::*;
    Some(match rule {
        EOI => "end of input",
        expr | operation | application | select | selector | lambda => "an expression",
        let_in => "`let`",
        with_expr => "`with`",
        assert_expr => "`assert`",
        if_expr => "`if`",
        formals | formal => "a function argument",
        ellipsis => "`...`",
        has_attr => "`?`",
        concat | update | implies | and | or_op | eq | neq | leq | geq | lt | gt | add | sub
        | mul | div => "an operator",
        negate | not => "an expression",
        parenthesized | list | attrset | kw_rec => "an expression",
        assign => "an attribute binding `name = value;`",
        inherit => "`inherit`",
        inherit_from => "`(`",
        attrpath | kw_or_name => "an attribute name",
        integer | float | path | search_path | string | string_text => "an expression",
        interpolation => "`${`",
        indented_string => "an expression",
        indented_text | indented_escape => "the rest of the indented string",
        identifier => "a name",
        kw_let => "`let`",
        kw_in => "`in`",
        kw_with => "`with`",
        kw_assert => "`assert`",
        kw_if => "`if`",
        kw_then => "`then`",
        kw_else => "`else`",
        kw_inherit => "`inherit`",
        kw_or => "`or`",
        file => "an expression",
        _ => return None,
    })
}

fn syntax_error(file: FileId, text: &str, err: pest::error::Error<Rule>) -> SyntaxError {
    use pest::error::{ErrorVariant, InputLocation};
    let pos = match err.location {
        InputLocation::Pos(p) => p,
        InputLocation::Span((s, _)) => s,
    };
    let found = describe_found(&text[pos.min(text.len())..]);
    let end = (pos + found.1).min(text.len());
    let span = Span::new(file, pos, end.max(pos));
    let (message, help) = match err.variant {
        ErrorVariant::ParsingError { positives, .. } => {
            let mut wanted: Vec<&str> = positives.iter().filter_map(describe).collect();
            wanted.dedup();
            let mut seen = std::collections::HashSet::new();
            wanted.retain(|w| seen.insert(*w));
            if wanted.contains(&"an expression") {
                // Keywords and names are expressions too; say it once.
                wanted
                    .retain(|w| !matches!(*w, "`let`" | "`with`" | "`assert`" | "`if`" | "a name"));
            }
            if wanted == ["`${`"] {
                // Inside a string, only an interpolation or the closing quote can come.
                wanted = vec!["`\"` to close the string"];
            }
            let list = match wanted.len() {
                0 => "something else".to_string(),
                1 => wanted[0].to_string(),
                n => format!("{} or {}", wanted[..n - 1].join(", "), wanted[n - 1]),
            };
            let help = hint(&wanted, &found.0);
            (format!("unexpected {}, expected {list}", found.0), help)
        }
        ErrorVariant::CustomError { message } => (message, None),
    };
    SyntaxError {
        span,
        message,
        help,
        labels: Vec::new(),
    }
}

/// What the parser found at the error position, in words, and its length.
fn describe_found(rest: &str) -> (String, usize) {
    let Some(c) = rest.chars().next() else {
        return ("end of input".into(), 0);
    };
    if c.is_ascii_alphanumeric() || c == '_' {
        let word: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '\''))
            .collect();
        let len = word.len();
        return (format!("`{word}`"), len);
    }
    (format!("`{c}`"), c.len_utf8())
}

fn hint(wanted: &[&str], found: &str) -> Option<String> {
    if wanted.contains(&"`in`") {
        return Some(
            "a `let` needs `in` after its bindings, and each binding ends with `;`".into(),
        );
    }
    if wanted.contains(&"an attribute binding `name = value;`") && found != "end of input" {
        return Some("each attribute is written `name = value;` — is a `;` missing?".into());
    }
    if found == "`=`" {
        return Some("each binding ends with `;`: is one missing on the line before?".into());
    }
    if found == "end of input" {
        return Some("the file ends early: is a closing bracket, quote or `;` missing?".into());
    }
    None
}

/// How tightly an operator binds: `(left, right)` binding powers, higher
/// binds tighter. The levels follow the Nix manual's precedence table; left
/// associative operators bind tighter on the right, right associative ones on
/// the left.
fn infix_power(rule: Rule) -> (u8, u8, BinaryOp) {
    let (level, right_assoc, op) = match rule {
        Rule::implies => (1, true, BinaryOp::Implies),
        Rule::or_op => (2, false, BinaryOp::Or),
        Rule::and => (3, false, BinaryOp::And),
        Rule::eq => (4, false, BinaryOp::Eq),
        Rule::neq => (4, false, BinaryOp::Ne),
        Rule::lt => (5, false, BinaryOp::Lt),
        Rule::leq => (5, false, BinaryOp::Le),
        Rule::gt => (5, false, BinaryOp::Gt),
        Rule::geq => (5, false, BinaryOp::Ge),
        Rule::update => (6, true, BinaryOp::Update),
        Rule::add => (8, false, BinaryOp::Add),
        Rule::sub => (8, false, BinaryOp::Sub),
        Rule::mul => (9, false, BinaryOp::Mul),
        Rule::div => (9, false, BinaryOp::Div),
        Rule::concat => (10, true, BinaryOp::Concat),
        other => unreachable!("grammar: {other:?} is not an infix operator"),
    };
    if right_assoc {
        (2 * level + 1, 2 * level, op)
    } else {
        (2 * level, 2 * level + 1, op)
    }
}

/// `!` sits between `//` and `+`; unary minus binds tighter than `?`.
const NOT_POWER: u8 = 2 * 7;
const HAS_ATTR_POWER: u8 = 2 * 11;
const NEGATE_POWER: u8 = 2 * 12;

/// One element of an operation, after regrouping the flat pairs.
enum Piece<'i> {
    Operand(Expr),
    Prefix(Pair<'i, Rule>),
    Postfix(Pair<'i, Rule>),
    Infix(Pair<'i, Rule>),
}

struct Builder<'t> {
    file: FileId,
    text: &'t str,
}

type Built<T> = Result<T, SyntaxError>;

impl Builder<'_> {
    fn span(&self, pair: &Pair<Rule>) -> Span {
        let s = pair.as_span();
        Span::new(self.file, s.start(), s.end())
    }

    fn error(&self, span: Span, message: impl Into<String>, help: Option<&str>) -> SyntaxError {
        SyntaxError {
            span,
            message: message.into(),
            help: help.map(String::from),
            labels: Vec::new(),
        }
    }

    fn expr(&self, pair: Pair<Rule>) -> Built<Expr> {
        let span = self.span(&pair);
        let kind = match pair.as_rule() {
            Rule::operation => return self.operation(pair.into_inner()),
            Rule::lambda => ExprKind::Lambda(Rc::new(self.lambda(pair)?)),
            Rule::let_in => {
                let mut inner: Vec<Pair<Rule>> = pair.into_inner().collect();
                let body = inner.pop().expect("grammar: let has a body");
                let bindings = inner
                    .into_iter()
                    .filter(|p| !matches!(p.as_rule(), Rule::kw_let | Rule::kw_in));
                let set = self.bindings(bindings, true)?;
                if let Some(d) = set.dynamics.first() {
                    return Err(self.error(
                        d.key.span,
                        "dynamic attributes are not allowed in `let`",
                        Some("bind a fixed name here, or build an attribute set"),
                    ));
                }
                ExprKind::Let(Box::new(set), Box::new(self.expr(body)?))
            }
            Rule::with_expr => {
                let mut inner = pair.into_inner().skip(1);
                let scope = self.expr(inner.next().expect("grammar: with scope"))?;
                let body = self.expr(inner.next().expect("grammar: with body"))?;
                ExprKind::With {
                    scope: Rc::new(scope),
                    body: Box::new(body),
                }
            }
            Rule::assert_expr => {
                let mut inner = pair.into_inner().skip(1);
                let cond = self.expr(inner.next().expect("grammar: assert condition"))?;
                let body = self.expr(inner.next().expect("grammar: assert body"))?;
                ExprKind::Assert {
                    cond: Box::new(cond),
                    body: Box::new(body),
                }
            }
            Rule::if_expr => {
                let mut inner = pair.into_inner().filter(|p| {
                    !matches!(p.as_rule(), Rule::kw_if | Rule::kw_then | Rule::kw_else)
                });
                let cond = self.expr(inner.next().expect("grammar: if condition"))?;
                let then = self.expr(inner.next().expect("grammar: then branch"))?;
                let otherwise = self.expr(inner.next().expect("grammar: else branch"))?;
                ExprKind::If {
                    cond: Box::new(cond),
                    then: Box::new(then),
                    otherwise: Box::new(otherwise),
                }
            }
            Rule::parenthesized => {
                return self.expr(
                    pair.into_inner()
                        .next()
                        .expect("grammar: parenthesized expression"),
                );
            }
            Rule::integer => match pair.as_str().parse::<i64>() {
                Ok(n) => ExprKind::Int(n),
                Err(_) => {
                    return Err(self.error(
                        span,
                        format!(
                            "integer literal `{}` does not fit in 64 bits",
                            pair.as_str()
                        ),
                        Some("integers are signed 64-bit; use a float for larger magnitudes"),
                    ))
                }
            },
            Rule::float => ExprKind::Float(pair.as_str().parse::<f64>().map_err(|_| {
                self.error(
                    span,
                    format!("invalid float literal `{}`", pair.as_str()),
                    None,
                )
            })?),
            Rule::path => ExprKind::Path(pair.as_str().to_string()),
            Rule::search_path => {
                let s = pair.as_str();
                ExprKind::SearchPath(s[1..s.len() - 1].to_string())
            }
            Rule::string => ExprKind::Str(self.string(pair)?),
            Rule::indented_string => ExprKind::Str(self.indented_string(pair)?),
            Rule::identifier => ExprKind::Var(Var::new(pair.as_str().into())),
            Rule::list => {
                let items = self
                    .selects(pair.into_inner())?
                    .into_iter()
                    .map(Rc::new)
                    .collect();
                ExprKind::List(items)
            }
            Rule::attrset => {
                let inner: Vec<Pair<Rule>> = pair.into_inner().collect();
                let recursive = inner.first().is_some_and(|p| p.as_rule() == Rule::kw_rec);
                let set = self.bindings(
                    inner.into_iter().filter(|p| p.as_rule() != Rule::kw_rec),
                    recursive,
                )?;
                ExprKind::Attrs(Box::new(set))
            }
            other => unreachable!("grammar: unexpected rule {other:?} in expression position"),
        };
        Ok(Expr { span, kind })
    }

    fn operation(&self, pairs: Pairs<Rule>) -> Built<Expr> {
        let mut pieces: Vec<Piece> = Vec::new();
        let mut operands: Vec<Pair<Rule>> = Vec::new();
        for p in pairs {
            let piece = match p.as_rule() {
                Rule::negate | Rule::not => Piece::Prefix(p),
                Rule::has_attr => Piece::Postfix(p),
                Rule::concat
                | Rule::update
                | Rule::implies
                | Rule::and
                | Rule::or_op
                | Rule::eq
                | Rule::neq
                | Rule::leq
                | Rule::geq
                | Rule::lt
                | Rule::gt
                | Rule::add
                | Rule::sub
                | Rule::mul
                | Rule::div => Piece::Infix(p),
                _ => {
                    operands.push(p);
                    continue;
                }
            };
            if !operands.is_empty() {
                pieces.push(Piece::Operand(
                    self.application(std::mem::take(&mut operands))?,
                ));
            }
            pieces.push(piece);
        }
        if !operands.is_empty() {
            pieces.push(Piece::Operand(self.application(operands)?));
        }
        let mut pieces = pieces.into_iter().peekable();
        self.climb(&mut pieces, 0)
    }

    /// Precedence climbing over the regrouped pieces of one operation.
    fn climb<'i>(
        &self,
        pieces: &mut std::iter::Peekable<std::vec::IntoIter<Piece<'i>>>,
        min_power: u8,
    ) -> Built<Expr> {
        let mut lhs = match pieces.next() {
            Some(Piece::Operand(e)) => e,
            Some(Piece::Prefix(op)) => {
                let (unary, power) = if op.as_rule() == Rule::negate {
                    (UnaryOp::Negate, NEGATE_POWER)
                } else {
                    (UnaryOp::Not, NOT_POWER)
                };
                let rhs = self.climb(pieces, power)?;
                Expr {
                    span: self.span(&op).to(rhs.span),
                    kind: ExprKind::Unary(unary, Box::new(rhs)),
                }
            }
            _ => unreachable!("grammar: an operation starts with an operand or a prefix operator"),
        };
        loop {
            match pieces.peek() {
                Some(Piece::Postfix(_)) if HAS_ATTR_POWER >= min_power => {
                    let Some(Piece::Postfix(op)) = pieces.next() else {
                        unreachable!("peeked a postfix operator")
                    };
                    let span = lhs.span.to(self.span(&op));
                    let path =
                        self.attrpath(op.into_inner().next().expect("grammar: `?` has a path"))?;
                    lhs = Expr {
                        span,
                        kind: ExprKind::HasAttr {
                            target: Box::new(lhs),
                            path,
                        },
                    };
                }
                Some(Piece::Infix(op)) if infix_power(op.as_rule()).0 >= min_power => {
                    let Some(Piece::Infix(op)) = pieces.next() else {
                        unreachable!("peeked an infix operator")
                    };
                    let (_, right_power, binary) = infix_power(op.as_rule());
                    self.check_associative(&lhs, &op)?;
                    let rhs = self.climb(pieces, right_power)?;
                    let span = lhs.span.to(rhs.span);
                    lhs = Expr {
                        span,
                        kind: ExprKind::Binary(binary, Box::new(lhs), Box::new(rhs)),
                    };
                }
                _ => return Ok(lhs),
            }
        }
    }

    /// Comparisons do not chain in Nix: `a == b == c` and `a < b < c` are
    /// syntax errors unless parenthesised.
    fn check_associative(&self, lhs: &Expr, op: &Pair<Rule>) -> Built<()> {
        use BinaryOp::*;
        let group = |r: Rule| match r {
            Rule::eq | Rule::neq => Some(0),
            Rule::lt | Rule::leq | Rule::gt | Rule::geq => Some(1),
            _ => None,
        };
        let Some(g) = group(op.as_rule()) else {
            return Ok(());
        };
        let ExprKind::Binary(inner, ..) = &lhs.kind else {
            return Ok(());
        };
        let inner_group = match inner {
            Eq | Ne => Some(0),
            Lt | Le | Gt | Ge => Some(1),
            _ => None,
        };
        let between = &self.text[lhs.span.end as usize..op.as_span().start()];
        if inner_group == Some(g) && !between.contains(')') {
            return Err(self.error(
                self.span(op),
                format!(
                    "`{}` cannot follow another comparison without parentheses",
                    op.as_str()
                ),
                Some("comparisons do not chain: write `(a == b) == c` or `a == b && b == c`"),
            ));
        }
        Ok(())
    }

    /// `f a b`: the operands of one application, each a primary with an
    /// optional selector.
    fn application(&self, pairs: Vec<Pair<Rule>>) -> Built<Expr> {
        let mut items = self.selects(pairs)?.into_iter();
        let mut func = items.next().expect("grammar: an application has a head");
        for arg in items {
            let span = func.span.to(arg.span);
            func = Expr {
                span,
                kind: ExprKind::Apply {
                    func: Box::new(func),
                    arg: Rc::new(arg),
                },
            };
        }
        Ok(func)
    }

    /// Regroup a flat run of primaries and selectors into expressions.
    fn selects<'i>(&self, pairs: impl IntoIterator<Item = Pair<'i, Rule>>) -> Built<Vec<Expr>> {
        let mut out: Vec<Expr> = Vec::new();
        for p in pairs {
            if p.as_rule() == Rule::selector {
                let target = out.pop().expect("grammar: a selector follows a primary");
                out.push(self.selector(target, p)?);
            } else {
                out.push(self.expr(p)?);
            }
        }
        Ok(out)
    }

    /// `target.a.b or default`.
    fn selector(&self, target: Expr, pair: Pair<Rule>) -> Built<Expr> {
        let span = target.span.to(self.span(&pair));
        let mut inner = pair.into_inner();
        let path = self.attrpath(inner.next().expect("grammar: a selector has a path"))?;
        let default = self
            .selects(inner.filter(|p| p.as_rule() != Rule::kw_or))?
            .pop()
            .map(Box::new);
        Ok(Expr {
            span,
            kind: ExprKind::Select {
                target: Box::new(target),
                path,
                default,
            },
        })
    }

    fn attrpath(&self, pair: Pair<Rule>) -> Built<Vec<AttrKey>> {
        pair.into_inner().map(|p| self.attr_key(p)).collect()
    }

    fn attr_key(&self, pair: Pair<Rule>) -> Built<AttrKey> {
        let span = self.span(&pair);
        Ok(match pair.as_rule() {
            Rule::identifier | Rule::kw_or_name => AttrKey::Static(pair.as_str().into(), span),
            Rule::string => {
                let parts = self.string(pair)?;
                match parts.as_slice() {
                    [] => AttrKey::Static("".into(), span),
                    [StrPart::Literal(s)] => AttrKey::Static(s.as_str().into(), span),
                    _ => AttrKey::Dynamic(Box::new(Expr {
                        span,
                        kind: ExprKind::Str(parts),
                    })),
                }
            }
            Rule::interpolation => {
                let e = self.expr(
                    pair.into_inner()
                        .next()
                        .expect("grammar: interpolation holds an expression"),
                )?;
                // As in Nix, `${"a"}` (a string without interpolation) is the static name `a`.
                match &e.kind {
                    ExprKind::Str(parts)
                        if parts.iter().all(|p| matches!(p, StrPart::Literal(_))) =>
                    {
                        let name: String = parts
                            .iter()
                            .map(|p| match p {
                                StrPart::Literal(s) => s.as_str(),
                                StrPart::Interpolation(_) => "",
                            })
                            .collect();
                        AttrKey::Static(name.into(), span)
                    }
                    _ => AttrKey::Dynamic(Box::new(e)),
                }
            }
            other => unreachable!("grammar: {other:?} is not an attribute name"),
        })
    }

    fn lambda(&self, pair: Pair<Rule>) -> Built<Lambda> {
        let span = self.span(&pair);
        let mut inner: Vec<Pair<Rule>> = pair.into_inner().collect();
        let body = self.expr(inner.pop().expect("grammar: lambda has a body"))?;
        let mut name: Option<(Name, Span)> = None;
        let mut formals = None;
        for p in inner {
            match p.as_rule() {
                Rule::identifier => name = Some((p.as_str().into(), self.span(&p))),
                Rule::formals => formals = Some(self.formals(p)?),
                other => unreachable!("grammar: {other:?} in lambda head"),
            }
        }
        let param = match formals {
            None => {
                let (n, s) = name.expect("grammar: a lambda has a name or formals");
                Param::Ident(n, s)
            }
            Some((formals, ellipsis)) => {
                if let Some((bind, bspan)) = &name {
                    if formals.iter().any(|f| &f.name == bind) {
                        return Err(self.error(
                            *bspan,
                            format!("duplicate formal function argument `{bind}`"),
                            Some("the `@` name must differ from the argument names"),
                        ));
                    }
                }
                Param::Formals {
                    formals,
                    ellipsis,
                    bind: name,
                }
            }
        };
        Ok(Lambda { param, body, span })
    }

    fn formals(&self, pair: Pair<Rule>) -> Built<(Vec<Formal>, bool)> {
        let mut formals: Vec<Formal> = Vec::new();
        let mut ellipsis = false;
        for p in pair.into_inner() {
            match p.as_rule() {
                Rule::ellipsis => ellipsis = true,
                Rule::formal => {
                    let mut inner = p.into_inner();
                    let id = inner.next().expect("grammar: formal has a name");
                    let span = self.span(&id);
                    let name: Name = id.as_str().into();
                    if formals.iter().any(|f| f.name == name) {
                        return Err(self.error(
                            span,
                            format!("duplicate formal function argument `{name}`"),
                            None,
                        ));
                    }
                    let default = match inner.next() {
                        Some(d) => Some(Rc::new(self.expr(d)?)),
                        None => None,
                    };
                    formals.push(Formal {
                        name,
                        span,
                        default,
                    });
                }
                other => unreachable!("grammar: {other:?} in formals"),
            }
        }
        Ok((formals, ellipsis))
    }

    /// Build the bindings of a set or `let`, merging nested paths as Nix does.
    fn bindings<'i>(
        &self,
        pairs: impl Iterator<Item = Pair<'i, Rule>>,
        recursive: bool,
    ) -> Built<AttrSet> {
        let mut set = AttrSet {
            recursive,
            ..AttrSet::default()
        };
        for p in pairs {
            match p.as_rule() {
                Rule::assign => {
                    let mut inner = p.into_inner();
                    let path = self.attrpath(inner.next().expect("grammar: binding has a path"))?;
                    let value = self.expr(inner.next().expect("grammar: binding has a value"))?;
                    self.insert(&mut set, path, value)?;
                }
                Rule::inherit => self.inherit(&mut set, p)?,
                other => unreachable!("grammar: {other:?} in bindings"),
            }
        }
        Ok(set)
    }

    fn inherit(&self, set: &mut AttrSet, pair: Pair<Rule>) -> Built<()> {
        let mut from: Option<Rc<Expr>> = None;
        for p in pair.into_inner() {
            match p.as_rule() {
                Rule::kw_inherit => {}
                Rule::inherit_from => {
                    from = Some(Rc::new(
                        self.expr(p.into_inner().next().expect("grammar: inherit source"))?,
                    ))
                }
                _ => {
                    let (name, span) = match self.attr_key(p)? {
                        AttrKey::Static(n, s) => (n, s),
                        AttrKey::Dynamic(e) => {
                            return Err(self.error(
                                e.span,
                                "dynamic attributes are not allowed in `inherit`",
                                Some("write `name = expr;` instead"),
                            ))
                        }
                    };
                    let (value, inherited) = match &from {
                        None => (
                            Expr {
                                span,
                                kind: ExprKind::Var(Var::new(name.clone())),
                            },
                            true,
                        ),
                        Some(src) => {
                            let target = Box::new(src.as_ref().clone());
                            let path = vec![AttrKey::Static(name.clone(), span)];
                            (
                                Expr {
                                    span,
                                    kind: ExprKind::Select {
                                        target,
                                        path,
                                        default: None,
                                    },
                                },
                                false,
                            )
                        }
                    };
                    if let Some(prev) = set.find(&name) {
                        return Err(self.duplicate(&name, span, prev.span));
                    }
                    set.push_static(StaticAttr {
                        name,
                        span,
                        value: Rc::new(value),
                        inherited,
                    });
                }
            }
        }
        Ok(())
    }

    fn duplicate(&self, name: &str, span: Span, first: Span) -> SyntaxError {
        let mut err = self.error(
            span,
            format!("attribute `{name}` is already defined"),
            Some("each attribute may be defined once; rename one or merge the two"),
        );
        err.labels.push((first, "first defined here".into()));
        err
    }

    fn insert(&self, set: &mut AttrSet, path: Vec<AttrKey>, value: Expr) -> Built<()> {
        let mut keys = path.into_iter();
        let first = keys
            .next()
            .expect("grammar: an attribute path has a first key");
        let rest: Vec<AttrKey> = keys.collect();
        let value = if rest.is_empty() {
            value
        } else {
            nest(rest, value)
        };
        match first {
            AttrKey::Dynamic(key) => {
                set.dynamics.push(DynamicAttr {
                    key: *key,
                    value: Rc::new(value),
                });
                Ok(())
            }
            AttrKey::Static(name, span) => {
                let Some(existing) = set.find_mut(&name) else {
                    set.push_static(StaticAttr {
                        name,
                        span,
                        value: Rc::new(value),
                        inherited: false,
                    });
                    return Ok(());
                };
                // `a.b = 1; a.c = 2;` or `a = { b = 1; }; a.c = 2;`: merge into one set.
                let first_span = existing.span;
                let target = Rc::get_mut(&mut existing.value)
                    .expect("parser: bindings are uniquely owned while built");
                match (&mut target.kind, value.kind) {
                    (ExprKind::Attrs(into), ExprKind::Attrs(from)) if !existing.inherited => {
                        if from.recursive {
                            into.recursive = true;
                        }
                        for attr in from.statics {
                            let v = Rc::try_unwrap(attr.value).unwrap_or_else(|rc| (*rc).clone());
                            if attr.inherited {
                                if let Some(prev) = into.find(&attr.name) {
                                    return Err(self.duplicate(&attr.name, attr.span, prev.span));
                                }
                                into.push_static(StaticAttr {
                                    value: Rc::new(v),
                                    ..attr
                                });
                            } else {
                                self.insert(into, vec![AttrKey::Static(attr.name, attr.span)], v)?;
                            }
                        }
                        into.dynamics.extend(from.dynamics);
                        Ok(())
                    }
                    _ => Err(self.duplicate(&name, span, first_span)),
                }
            }
        }
    }

    /// A `"…"` string. Its text pieces are the gaps between interpolations
    /// (the grammar makes no pairs for them, to keep parsing cheap).
    fn string(&self, pair: Pair<Rule>) -> Built<Vec<StrPart>> {
        let whole = pair.as_span();
        let (mut at, end) = (whole.start() + 1, whole.end() - 1);
        let mut parts = Vec::new();
        for p in pair.into_inner() {
            let s = p.as_span();
            push_literal(&mut parts, &unescape(&self.text[at..s.start()]));
            at = s.end();
            parts.push(self.interpolation(p)?);
        }
        push_literal(&mut parts, &unescape(&self.text[at..end]));
        Ok(parts)
    }

    fn interpolation(&self, pair: Pair<Rule>) -> Built<StrPart> {
        let e = self.expr(
            pair.into_inner()
                .next()
                .expect("grammar: interpolation holds an expression"),
        )?;
        Ok(StrPart::Interpolation(Box::new(e)))
    }

    fn indented_string(&self, pair: Pair<Rule>) -> Built<Vec<StrPart>> {
        let mut pieces = Vec::new();
        let mut first = true;
        for p in pair.into_inner() {
            let piece = match p.as_rule() {
                Rule::indented_text => {
                    let mut text = p.as_str();
                    if first {
                        // Like Nix's lexer: a first line of only spaces is not part of the string.
                        let spaces = text.len() - text.trim_start_matches(' ').len();
                        if text[spaces..].starts_with('\n') {
                            text = &text[spaces + 1..];
                        }
                    }
                    Indented::Text(text.to_string())
                }
                Rule::indented_escape => Indented::Escape(match &p.as_str()[2..] {
                    "$" => "$".to_string(),
                    "'" => "''".to_string(),
                    esc => unescape(esc),
                }),
                Rule::interpolation => Indented::Interpolation(self.interpolation(p)?),
                other => unreachable!("grammar: {other:?} in indented string"),
            };
            first = false;
            pieces.push(piece);
        }
        Ok(strip_indentation(pieces))
    }
}

fn nest(path: Vec<AttrKey>, value: Expr) -> Expr {
    let mut value = value;
    for key in path.into_iter().rev() {
        let span = key.span().to(value.span);
        let mut set = AttrSet::default();
        match key {
            AttrKey::Static(name, kspan) => set.push_static(StaticAttr {
                name,
                span: kspan,
                value: Rc::new(value),
                inherited: false,
            }),
            AttrKey::Dynamic(key) => set.dynamics.push(DynamicAttr {
                key: *key,
                value: Rc::new(value),
            }),
        }
        value = Expr {
            span,
            kind: ExprKind::Attrs(Box::new(set)),
        };
    }
    value
}

fn push_literal(parts: &mut Vec<StrPart>, s: &str) {
    if let Some(StrPart::Literal(last)) = parts.last_mut() {
        last.push_str(s);
    } else if !s.is_empty() {
        parts.push(StrPart::Literal(s.to_string()));
    }
}

/// Resolve `\n`, `\t`, `\r` and `\x` → `x` escapes.
fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

enum Indented {
    Text(String),
    Escape(String),
    Interpolation(StrPart),
}

/// Nix's indentation stripping: find the smallest indentation of the lines
/// with content (escapes and interpolations count as content), remove it from
/// every line, and drop a last line made only of spaces.
fn strip_indentation(pieces: Vec<Indented>) -> Vec<StrPart> {
    // Stays at its maximum when no line has content: then every line's
    // leading spaces go.
    let mut min_indent = usize::MAX;
    let (mut cur, mut at_line_start) = (0usize, true);
    for piece in &pieces {
        match piece {
            Indented::Text(t) => {
                for c in t.chars() {
                    if at_line_start {
                        match c {
                            ' ' => cur += 1,
                            '\n' => cur = 0,
                            _ => {
                                at_line_start = false;
                                min_indent = min_indent.min(cur);
                            }
                        }
                    } else if c == '\n' {
                        at_line_start = true;
                        cur = 0;
                    }
                }
            }
            _ => {
                if at_line_start {
                    at_line_start = false;
                    min_indent = min_indent.min(cur);
                }
            }
        }
    }
    let mut parts = Vec::new();
    let (mut dropped, mut at_line_start) = (0usize, true);
    let count = pieces.len();
    for (i, piece) in pieces.into_iter().enumerate() {
        match piece {
            Indented::Text(t) => {
                let mut out = String::with_capacity(t.len());
                for c in t.chars() {
                    if at_line_start {
                        match c {
                            ' ' => {
                                if dropped >= min_indent {
                                    out.push(c);
                                }
                                dropped += 1;
                            }
                            '\n' => {
                                dropped = 0;
                                out.push(c);
                            }
                            _ => {
                                at_line_start = false;
                                dropped = 0;
                                out.push(c);
                            }
                        }
                    } else {
                        out.push(c);
                        if c == '\n' {
                            at_line_start = true;
                        }
                    }
                }
                if i == count - 1 {
                    if let Some(nl) = out.rfind('\n') {
                        if out[nl + 1..].bytes().all(|b| b == b' ') {
                            out.truncate(nl + 1);
                        }
                    }
                }
                push_literal(&mut parts, &out);
            }
            Indented::Escape(s) => {
                at_line_start = false;
                dropped = 0;
                push_literal(&mut parts, &s);
            }
            Indented::Interpolation(p) => {
                at_line_start = false;
                dropped = 0;
                parts.push(p);
            }
        }
    }
    parts
}
