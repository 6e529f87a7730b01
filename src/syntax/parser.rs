//! Tokens → typed AST, by recursive descent with precedence climbing over the
//! token stream of `lexer.rs`. Also: escapes and indented-string stripping,
//! merging of nested attribute paths, and syntax errors phrased for people.

use super::ast::*;
use super::lexer::{self, Tok, Token};
use super::span::{FileId, Span};
use std::rc::Rc;

/// Deeper nesting than this is refused: no real recipe comes near it, and
/// refusing early keeps parser recursion bounded.
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
    lexer::read(file, text, lexer::Comments::Drop, |runs| {
        let mut parser = Parser {
            file,
            text,
            tokens: Vec::new(),
            pos: 0,
            last_end: 0,
            runs,
            lex_error: None,
            depth: 0,
            names: Default::default(),
        };
        parser.refill();
        let expr = parser.expr()?;
        if parser.peek() != Tok::Eof {
            return Err(parser.unexpected("an operator or the end of the file"));
        }
        Ok(expr)
    })
}

/// What the parser found at the error position, in words, and its length.
pub(crate) fn describe_found(rest: &str) -> (String, usize) {
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

fn hint(wanted: &str, found: &str) -> Option<String> {
    if wanted.contains("`in`") {
        return Some(
            "a `let` needs `in` after its bindings, and each binding ends with `;`".into(),
        );
    }
    if found == "`=`" {
        return Some("each binding ends with `;`: is one missing on the line before?".into());
    }
    if found == "end of input" {
        return Some("the file ends early: is a closing bracket, quote or `;` missing?".into());
    }
    if wanted.contains("an attribute binding `name = value;`") {
        return Some("each attribute is written `name = value;` — is a `;` missing?".into());
    }
    if wanted == "`;`" {
        return Some("each binding ends with `;`".into());
    }
    None
}

/// How tightly an infix operator binds: `(left, right)` binding powers,
/// higher binds tighter. The levels follow the Nix manual's precedence table;
/// left associative operators bind tighter on the right, right associative
/// ones on the left.
fn infix_power(tok: Tok) -> Option<(u8, u8, BinaryOp)> {
    let (level, right_assoc, op) = match tok {
        Tok::Implies => (1, true, BinaryOp::Implies),
        Tok::OrOr => (2, false, BinaryOp::Or),
        Tok::And => (3, false, BinaryOp::And),
        Tok::Eq => (4, false, BinaryOp::Eq),
        Tok::Ne => (4, false, BinaryOp::Ne),
        Tok::Lt => (5, false, BinaryOp::Lt),
        Tok::Le => (5, false, BinaryOp::Le),
        Tok::Gt => (5, false, BinaryOp::Gt),
        Tok::Ge => (5, false, BinaryOp::Ge),
        Tok::Update => (6, true, BinaryOp::Update),
        Tok::Plus => (8, false, BinaryOp::Add),
        Tok::Minus => (8, false, BinaryOp::Sub),
        Tok::Star => (9, false, BinaryOp::Mul),
        Tok::Slash => (9, false, BinaryOp::Div),
        Tok::Concat => (10, true, BinaryOp::Concat),
        _ => return None,
    };
    Some(if right_assoc {
        (2 * level + 1, 2 * level, op)
    } else {
        (2 * level, 2 * level + 1, op)
    })
}

/// `!` sits between `//` and `+`; unary minus binds tighter than `?`.
const NOT_POWER: u8 = 2 * 7;
const HAS_ATTR_POWER: u8 = 2 * 11;
const NEGATE_POWER: u8 = 2 * 12;

struct Parser<'t, 'r> {
    file: FileId,
    text: &'t str,
    /// The tokens read so far and not yet taken, without comments, from
    /// `pos` on: always at least `LOOKAHEAD` of them, or up to `Eof`.
    tokens: Vec<Token>,
    pos: usize,
    /// Where the last token taken ends.
    last_end: u32,
    /// The rest of the file's tokens, as the lexer hands them over.
    runs: &'r mut lexer::Runs<'t>,
    /// Why the lexer stopped, at the `Error` token.
    lex_error: Option<SyntaxError>,
    /// How deep the recursion is, bounded by `MAX_NESTING`.
    depth: usize,
    /// Every name the file has used: equal names share one allocation, so
    /// an attribute lookup usually finds its name by address.
    names: std::collections::HashSet<Name, foldhash::fast::RandomState>,
}

type Built<T> = Result<T, SyntaxError>;

/// How many tokens the parser looks at, from the current one on.
const LOOKAHEAD: usize = 4;

impl Parser<'_, '_> {
    /// `text` as a name, shared with every equal name of the file.
    fn name(&mut self, text: &str) -> Name {
        if let Some(name) = self.names.get(text) {
            return name.clone();
        }
        let name: Name = text.into();
        self.names.insert(name.clone());
        name
    }

    // ── the token cursor ───────────────────────────────────────────────────

    fn peek(&self) -> Tok {
        self.tokens[self.pos].kind
    }

    /// The kind of the token `ahead` after the current one (`ahead <
    /// LOOKAHEAD`).
    fn peek_at(&self, ahead: usize) -> Tok {
        self.tokens
            .get(self.pos + ahead)
            .map_or(Tok::Eof, |t| t.kind)
    }

    /// The current token; moves on (never past `Eof` or `Error`).
    fn bump(&mut self) -> Token {
        let t = self.tokens[self.pos];
        if !t.kind.is_last() {
            self.pos += 1;
            self.last_end = t.end;
            if self.pos + LOOKAHEAD > self.tokens.len() {
                self.refill();
            }
        }
        t
    }

    /// Read the lexer's next runs until `LOOKAHEAD` tokens are ahead or the
    /// last token is in, dropping the tokens taken. The last token is `Eof`,
    /// or `Error` where the lexer failed (its error kept in `lex_error`).
    fn refill(&mut self) {
        if self.tokens.last().is_some_and(|t| t.kind.is_last()) {
            return;
        }
        self.tokens.drain(..self.pos);
        self.pos = 0;
        while self.tokens.len() < LOOKAHEAD {
            match self.runs.next_run() {
                Ok(Some(run)) => self.tokens.extend_from_slice(&run),
                Ok(None) => {
                    self.tokens.push(self.runs.eof());
                    return;
                }
                Err(err) => {
                    let at = err.span.start;
                    self.tokens.push(Token {
                        kind: Tok::Error,
                        start: at,
                        end: at,
                    });
                    self.lex_error = Some(err);
                    return;
                }
            }
        }
    }

    fn span_of(&self, t: Token) -> Span {
        Span::new(self.file, t.start as usize, t.end as usize)
    }

    /// The span from token `t` to the end of the last token taken.
    fn since(&self, t: Token) -> Span {
        let end = self.last_end.max(t.end);
        Span::new(self.file, t.start as usize, end as usize)
    }

    fn expect(&mut self, kind: Tok, wanted: &str) -> Built<Token> {
        if self.peek() == kind {
            Ok(self.bump())
        } else {
            Err(self.unexpected(wanted))
        }
    }

    /// "unexpected X, expected Y" at the current token.
    fn unexpected(&self, wanted: &str) -> SyntaxError {
        self.unexpected_at(self.tokens[self.pos], wanted)
    }

    /// "unexpected X, expected Y" at token `t`; at the place the lexer
    /// failed, what it found.
    fn unexpected_at(&self, t: Token, wanted: &str) -> SyntaxError {
        if let (Tok::Error, Some(err)) = (t.kind, &self.lex_error) {
            return err.clone();
        }
        let (found, len) = if t.kind == Tok::Eof {
            ("end of input".to_string(), 0)
        } else {
            describe_found(&self.text[t.start as usize..])
        };
        let span = Span::new(self.file, t.start as usize, t.start as usize + len);
        let help = hint(wanted, &found);
        SyntaxError {
            span,
            message: format!("unexpected {found}, expected {wanted}"),
            help,
            labels: Vec::new(),
        }
    }

    fn error(&self, span: Span, message: impl Into<String>, help: Option<&str>) -> SyntaxError {
        SyntaxError {
            span,
            message: message.into(),
            help: help.map(String::from),
            labels: Vec::new(),
        }
    }

    fn enter(&mut self) -> Built<()> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            let t = self.tokens[self.pos];
            return Err(self.error(
                self.span_of(t),
                format!("expressions are nested more than {MAX_NESTING} levels deep"),
                Some("split the expression into named `let` bindings"),
            ));
        }
        Ok(())
    }

    // ── expressions ────────────────────────────────────────────────────────

    fn expr(&mut self) -> Built<Expr> {
        self.enter()?;
        let e = self.expr_inner();
        self.depth -= 1;
        e
    }

    fn expr_inner(&mut self) -> Built<Expr> {
        let first = self.tokens[self.pos];
        let kind = match first.kind {
            Tok::Let if self.peek_at(1) != Tok::LBrace => {
                self.bump();
                let set = self.bindings(
                    Tok::In,
                    "an attribute binding `name = value;`, `in` or `inherit`",
                    true,
                )?;
                self.bump();
                if let Some(d) = set.dynamics.first() {
                    return Err(self.error(
                        d.key.span,
                        "dynamic attributes are not allowed in `let`",
                        Some("bind a fixed name here, or build an attribute set"),
                    ));
                }
                let body = self.expr()?;
                ExprKind::Let(Box::new(set), Box::new(body))
            }
            Tok::With => {
                self.bump();
                let scope = self.expr()?;
                self.expect(Tok::Semi, "`;`")?;
                let body = self.expr()?;
                ExprKind::With {
                    scope: Rc::new(scope),
                    body: Box::new(body),
                }
            }
            Tok::Assert => {
                self.bump();
                let cond = self.expr()?;
                self.expect(Tok::Semi, "`;`")?;
                let body = self.expr()?;
                ExprKind::Assert {
                    cond: Box::new(cond),
                    body: Box::new(body),
                }
            }
            Tok::If => {
                self.bump();
                let cond = self.expr()?;
                self.expect(Tok::Then, "`then`")?;
                let then = self.expr()?;
                self.expect(Tok::Else, "`else`")?;
                let otherwise = self.expr()?;
                ExprKind::If {
                    cond: Box::new(cond),
                    then: Box::new(then),
                    otherwise: Box::new(otherwise),
                }
            }
            Tok::Ident if matches!(self.peek_at(1), Tok::Colon | Tok::At) => {
                ExprKind::Lambda(Rc::new(self.lambda()?))
            }
            Tok::LBrace if self.formals_ahead() => ExprKind::Lambda(Rc::new(self.lambda()?)),
            _ => return self.climb(0),
        };
        Ok(Expr {
            span: self.since(first),
            kind,
        })
    }

    /// At `{`: do function arguments follow (`{ a, b ? 1, ... }:`), rather
    /// than an attribute set?
    fn formals_ahead(&self) -> bool {
        match self.peek_at(1) {
            Tok::Ellipsis => true,
            Tok::RBrace => matches!(self.peek_at(2), Tok::Colon | Tok::At),
            Tok::Ident => match self.peek_at(2) {
                Tok::Comma | Tok::Question => true,
                Tok::RBrace => matches!(self.peek_at(3), Tok::Colon | Tok::At),
                _ => false,
            },
            _ => false,
        }
    }

    /// Precedence climbing over prefix, postfix and infix operators whose
    /// operands are applications.
    fn climb(&mut self, min_power: u8) -> Built<Expr> {
        self.enter()?;
        let e = self.climb_inner(min_power);
        self.depth -= 1;
        e
    }

    fn climb_inner(&mut self, min_power: u8) -> Built<Expr> {
        let first = self.tokens[self.pos];
        let mut lhs = match first.kind {
            Tok::Minus | Tok::Not => {
                self.bump();
                let (unary, power) = if first.kind == Tok::Minus {
                    (UnaryOp::Negate, NEGATE_POWER)
                } else {
                    (UnaryOp::Not, NOT_POWER)
                };
                let rhs = self.climb(power)?;
                Expr {
                    span: self.span_of(first).to(rhs.span),
                    kind: ExprKind::Unary(unary, Box::new(rhs)),
                }
            }
            _ => self.application()?,
        };
        loop {
            let op = self.tokens[self.pos];
            if op.kind == Tok::Question {
                if HAS_ATTR_POWER < min_power {
                    return Ok(lhs);
                }
                self.bump();
                let path = self.attrpath()?;
                lhs = Expr {
                    span: lhs.span.to(self.since(op)),
                    kind: ExprKind::HasAttr {
                        target: Box::new(lhs),
                        path,
                    },
                };
                continue;
            }
            let Some((left, right, binary)) = infix_power(op.kind) else {
                return Ok(lhs);
            };
            if left < min_power {
                return Ok(lhs);
            }
            self.check_associative(&lhs, op, binary)?;
            self.bump();
            let rhs = self.climb(right)?;
            lhs = Expr {
                span: lhs.span.to(rhs.span),
                kind: ExprKind::Binary(binary, Box::new(lhs), Box::new(rhs)),
            };
        }
    }

    /// Comparisons do not chain in Nix: `a == b == c` and `a < b < c` are
    /// syntax errors unless parenthesised.
    fn check_associative(&self, lhs: &Expr, op: Token, binary: BinaryOp) -> Built<()> {
        use BinaryOp::*;
        let group = |b: BinaryOp| match b {
            Eq | Ne => Some(0),
            Lt | Le | Gt | Ge => Some(1),
            _ => None,
        };
        let Some(g) = group(binary) else {
            return Ok(());
        };
        let ExprKind::Binary(inner, ..) = &lhs.kind else {
            return Ok(());
        };
        let between = &self.text[lhs.span.end as usize..op.start as usize];
        if group(*inner) == Some(g) && !between.contains(')') {
            return Err(self.error(
                self.span_of(op),
                format!(
                    "`{}` cannot follow another comparison without parentheses",
                    op.text(self.text)
                ),
                Some("comparisons do not chain: write `(a == b) == c` or `a == b && b == c`"),
            ));
        }
        Ok(())
    }

    /// Can the current token start an operand of an application?
    fn at_operand(&self) -> bool {
        match self.peek() {
            Tok::Let => self.peek_at(1) == Tok::LBrace,
            k => k.starts_operand(),
        }
    }

    /// `f a b`: the operands of one application, each a primary with an
    /// optional selector.
    fn application(&mut self) -> Built<Expr> {
        let mut func = self.select()?;
        while self.at_operand() {
            let arg = self.select()?;
            func = Expr {
                span: func.span.to(arg.span),
                kind: ExprKind::Apply {
                    func: Box::new(func),
                    arg: Rc::new(arg),
                },
            };
        }
        Ok(func)
    }

    /// `target.a.b or default`, or just a primary.
    fn select(&mut self) -> Built<Expr> {
        let target = self.primary()?;
        if self.peek() != Tok::Dot {
            return Ok(target);
        }
        self.bump();
        let path = self.attrpath()?;
        let default = if self.peek() == Tok::Or {
            self.bump();
            Some(Box::new(self.select()?))
        } else {
            None
        };
        let end = self.last_end as usize;
        Ok(Expr {
            span: Span::new(self.file, target.span.start as usize, end),
            kind: ExprKind::Select {
                target: Box::new(target),
                path,
                default,
            },
        })
    }

    fn primary(&mut self) -> Built<Expr> {
        self.enter()?;
        let e = self.primary_inner();
        self.depth -= 1;
        e
    }

    fn primary_inner(&mut self) -> Built<Expr> {
        let t = self.tokens[self.pos];
        let span = self.span_of(t);
        let kind = match t.kind {
            Tok::Ident => {
                self.bump();
                ExprKind::Var(Var::new(self.name(t.text(self.text))))
            }
            Tok::Int => {
                self.bump();
                let s = t.text(self.text);
                match s.parse::<i64>() {
                    Ok(n) => ExprKind::Int(n),
                    Err(_) => {
                        return Err(self.error(
                            span,
                            format!("integer literal `{s}` does not fit in 64 bits"),
                            Some("integers are signed 64-bit; use a float for larger magnitudes"),
                        ))
                    }
                }
            }
            Tok::Float => {
                self.bump();
                let s = t.text(self.text);
                ExprKind::Float(
                    s.parse::<f64>().map_err(|_| {
                        self.error(span, format!("invalid float literal `{s}`"), None)
                    })?,
                )
            }
            Tok::Path => {
                self.bump();
                ExprKind::Path(t.text(self.text).to_string())
            }
            Tok::SearchPath => {
                self.bump();
                let s = t.text(self.text);
                ExprKind::SearchPath(s[1..s.len() - 1].to_string())
            }
            Tok::StrOpen => ExprKind::Str(self.string()?),
            Tok::IndOpen => ExprKind::Str(self.indented_string()?),
            Tok::LParen => {
                self.bump();
                let e = self.expr()?;
                self.expect(Tok::RParen, "`)` or an operator")?;
                return Ok(e);
            }
            Tok::LBrack => {
                self.bump();
                let mut items = Vec::new();
                while self.peek() != Tok::RBrack {
                    if !self.at_operand() {
                        return Err(self.unexpected("a list element or `]`"));
                    }
                    items.push(Rc::new(self.select()?));
                }
                self.bump();
                ExprKind::List(items)
            }
            Tok::LBrace | Tok::Rec => {
                let recursive = t.kind == Tok::Rec;
                if recursive {
                    self.bump();
                }
                self.expect(Tok::LBrace, "`{`")?;
                let set = self.bindings(
                    Tok::RBrace,
                    "an attribute binding `name = value;`, `inherit` or `}`",
                    recursive,
                )?;
                self.bump();
                ExprKind::Attrs(Box::new(set))
            }
            Tok::Let => {
                // The old `let { a = 1; body = a; }`: the `body` of a `rec` set.
                self.bump();
                let open = self.bump();
                let set = self.bindings(
                    Tok::RBrace,
                    "an attribute binding `name = value;`, `inherit` or `}`",
                    true,
                )?;
                self.bump();
                let target = Expr {
                    span: self.since(t),
                    kind: ExprKind::Attrs(Box::new(set)),
                };
                ExprKind::Select {
                    target: Box::new(target),
                    path: vec![AttrKey::Static("body".into(), self.span_of(open))],
                    default: None,
                }
            }
            _ => return Err(self.unexpected("an expression")),
        };
        Ok(Expr {
            span: self.since(t),
            kind,
        })
    }

    // ── functions ──────────────────────────────────────────────────────────

    fn lambda(&mut self) -> Built<Lambda> {
        let first = self.tokens[self.pos];
        let mut name: Option<(Name, Span)> = None;
        let mut formals = None;
        if self.peek() == Tok::Ident {
            let id = self.bump();
            name = Some((self.name(id.text(self.text)), self.span_of(id)));
            if self.peek() == Tok::At {
                self.bump();
                if self.peek() != Tok::LBrace {
                    return Err(self.unexpected("`{` and the function's arguments"));
                }
                formals = Some(self.formals()?);
            }
        } else {
            formals = Some(self.formals()?);
            if self.peek() == Tok::At {
                self.bump();
                let id = self.expect(Tok::Ident, "a name")?;
                name = Some((self.name(id.text(self.text)), self.span_of(id)));
            }
        }
        self.expect(Tok::Colon, "`:`")?;
        let body = self.expr()?;
        let span = self.since(first);
        let param = match formals {
            None => {
                let (n, s) = name.expect("parser: a lambda has a name or formals");
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

    /// `{ a, b ? 1, ... }`
    fn formals(&mut self) -> Built<(Vec<Formal>, bool)> {
        self.expect(Tok::LBrace, "`{`")?;
        let mut formals: Vec<Formal> = Vec::new();
        let mut ellipsis = false;
        loop {
            match self.peek() {
                Tok::RBrace => break,
                Tok::Ellipsis => {
                    self.bump();
                    ellipsis = true;
                    if self.peek() == Tok::Comma {
                        self.bump();
                    }
                    break;
                }
                Tok::Ident => {
                    let id = self.bump();
                    let span = self.span_of(id);
                    let name: Name = self.name(id.text(self.text));
                    if formals.iter().any(|f| f.name == name) {
                        return Err(self.error(
                            span,
                            format!("duplicate formal function argument `{name}`"),
                            None,
                        ));
                    }
                    let default = if self.peek() == Tok::Question {
                        self.bump();
                        Some(Rc::new(self.expr()?))
                    } else {
                        None
                    };
                    formals.push(Formal {
                        name,
                        span,
                        default,
                    });
                    if self.peek() != Tok::Comma {
                        break;
                    }
                    self.bump();
                }
                _ => return Err(self.unexpected("a function argument or `}`")),
            }
        }
        self.expect(Tok::RBrace, "`,` or `}`")?;
        Ok((formals, ellipsis))
    }

    // ── bindings ───────────────────────────────────────────────────────────

    /// The bindings of a set or `let` up to `close` (not taken), merging
    /// nested paths as Nix does.
    fn bindings(&mut self, close: Tok, wanted: &str, recursive: bool) -> Built<AttrSet> {
        let mut set = AttrSet::default();
        set.recursive = recursive;
        loop {
            match self.peek() {
                k if k == close => return Ok(set),
                Tok::Inherit => self.inherit(&mut set)?,
                Tok::Ident | Tok::Or | Tok::StrOpen | Tok::InterpOpen => {
                    let first = self.tokens[self.pos];
                    let path = self.attrpath()?;
                    if self.peek() != Tok::Assign {
                        if close == Tok::In && self.peek() == Tok::Eof {
                            // `let x = 1; x`: most likely the `in` is missing.
                            return Err(self.unexpected_at(first, wanted));
                        }
                        return Err(self.unexpected("`=` or `.`"));
                    }
                    self.bump();
                    let value = self.expr()?;
                    if self.peek() != Tok::Semi {
                        return Err(self.unexpected("`;`"));
                    }
                    self.bump();
                    self.insert(&mut set, path, value)?;
                }
                _ => return Err(self.unexpected(wanted)),
            }
        }
    }

    fn inherit(&mut self, set: &mut AttrSet) -> Built<()> {
        self.bump();
        let mut from: Option<Rc<Expr>> = None;
        if self.peek() == Tok::LParen {
            self.bump();
            from = Some(Rc::new(self.expr()?));
            self.expect(Tok::RParen, "`)`")?;
        }
        loop {
            match self.peek() {
                Tok::Semi => {
                    self.bump();
                    return Ok(());
                }
                Tok::Ident | Tok::Or | Tok::StrOpen | Tok::InterpOpen => {}
                _ => return Err(self.unexpected("an attribute name or `;`")),
            }
            let (name, span) = match self.attr_key()? {
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

    fn attrpath(&mut self) -> Built<Vec<AttrKey>> {
        let mut path = vec![self.attr_key()?];
        while self.peek() == Tok::Dot {
            self.bump();
            path.push(self.attr_key()?);
        }
        Ok(path)
    }

    fn attr_key(&mut self) -> Built<AttrKey> {
        let t = self.tokens[self.pos];
        Ok(match t.kind {
            Tok::Ident | Tok::Or => {
                self.bump();
                AttrKey::Static(self.name(t.text(self.text)), self.span_of(t))
            }
            Tok::StrOpen => {
                let parts = self.string()?;
                let span = self.since(t);
                match parts.as_slice() {
                    [] => AttrKey::Static("".into(), span),
                    [StrPart::Literal(s)] => AttrKey::Static(self.name(s), span),
                    _ => AttrKey::Dynamic(Box::new(Expr {
                        span,
                        kind: ExprKind::Str(parts),
                    })),
                }
            }
            Tok::InterpOpen => {
                self.bump();
                let e = self.expr()?;
                self.expect(Tok::InterpClose, "`}` or an operator")?;
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
                        AttrKey::Static(name.into(), e.span)
                    }
                    _ => AttrKey::Dynamic(Box::new(e)),
                }
            }
            _ => return Err(self.unexpected("an attribute name")),
        })
    }

    // ── strings ────────────────────────────────────────────────────────────

    /// `${ expr }`, at its `${`.
    fn interpolation(&mut self) -> Built<StrPart> {
        self.bump();
        let e = self.expr()?;
        self.expect(Tok::InterpClose, "`}` or an operator")?;
        Ok(StrPart::Interpolation(Box::new(e)))
    }

    /// A `"…"` string, at its opening quote.
    fn string(&mut self) -> Built<Vec<StrPart>> {
        self.bump();
        let mut parts = Vec::new();
        loop {
            let t = self.tokens[self.pos];
            match t.kind {
                Tok::StrText => {
                    self.bump();
                    push_literal(&mut parts, &unescape(t.text(self.text)));
                }
                Tok::InterpOpen => parts.push(self.interpolation()?),
                Tok::StrClose => {
                    self.bump();
                    return Ok(parts);
                }
                other => unreachable!("lexer: {other:?} inside a string"),
            }
        }
    }

    /// A `''…''` string, at its opening quotes.
    fn indented_string(&mut self) -> Built<Vec<StrPart>> {
        self.bump();
        let mut pieces = Vec::new();
        let mut first = true;
        loop {
            let t = self.tokens[self.pos];
            let piece = match t.kind {
                Tok::IndText => {
                    self.bump();
                    let mut text = t.text(self.text);
                    if first {
                        // Like Nix's lexer: a first line of only spaces is not part of the string.
                        let spaces = text.len() - text.trim_start_matches(' ').len();
                        if text[spaces..].starts_with('\n') {
                            text = &text[spaces + 1..];
                        }
                    }
                    Indented::Text(text.to_string())
                }
                Tok::IndEscape => {
                    self.bump();
                    Indented::Escape(match &t.text(self.text)[2..] {
                        "$" => "$".to_string(),
                        "'" => "''".to_string(),
                        esc => unescape(esc),
                    })
                }
                Tok::InterpOpen => Indented::Interpolation(self.interpolation()?),
                Tok::IndClose => {
                    self.bump();
                    return Ok(strip_indentation(pieces));
                }
                other => unreachable!("lexer: {other:?} inside an indented string"),
            };
            first = false;
            pieces.push(piece);
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> SyntaxError {
        parse(FileId(0), text).expect_err("a syntax error")
    }

    /// A list of a megabyte (lexed in pieces, read while later ones are
    /// lexed), with `early` after its first line and `late` before its end.
    fn big_list(early: &str, late: &str) -> String {
        let mut text = format!("[\n{early}\n");
        while text.len() < 1 << 20 {
            text.push_str("  { a = 1; b = \"x${y}\"; c = ./p; }\n");
        }
        text.push_str(late);
        text.push_str("\n]\n");
        text
    }

    #[test]
    fn errors_in_a_big_file_are_reported_in_file_order() {
        parse(FileId(0), &big_list("", "")).expect("parses");
        let text = big_list("", "`");
        let lexing = err(&text);
        assert_eq!(lexing.span.start as usize, text.len() - 4);
        assert!(
            lexing.message.starts_with("unexpected ```"),
            "{}",
            lexing.message
        );
        let parsing = err(&big_list("=", "`"));
        assert_eq!(parsing.span.start, 2);
        assert!(
            parsing.message.starts_with("unexpected `=`"),
            "{}",
            parsing.message
        );
    }

    #[test]
    fn deep_nesting_is_refused_not_a_crash() {
        let n = MAX_NESTING + 10;
        for text in [
            format!("{}1{}", "[".repeat(n), "]".repeat(n)),
            format!("{}1{}", "\"${".repeat(n), "}\"".repeat(n)),
            format!("{}1", "x: ".repeat(n)),
            format!("{}1", "- ".repeat(n)),
        ] {
            // On a stack as deep as the evaluator's, where files are parsed.
            let message = crate::eval::run_with_stack(move || err(&text).message);
            assert!(message.contains("nested more than"), "{message}");
        }
    }

    #[test]
    fn errors_name_what_was_expected() {
        assert_eq!(err("{ a = 1 }").message, "unexpected `}`, expected `;`");
        assert_eq!(
            err("if a then b").message,
            "unexpected end of input, expected `else`"
        );
        assert_eq!(
            err("[ 1 2").message,
            "unexpected end of input, expected a list element or `]`"
        );
        assert_eq!(
            err("{ a, b }").message,
            "unexpected end of input, expected `:`"
        );
        assert_eq!(
            err("f (1").message,
            "unexpected end of input, expected `)` or an operator"
        );
        assert_eq!(
            err("1 +").message,
            "unexpected end of input, expected an expression"
        );
        assert_eq!(
            err("a == b == c").message,
            "`==` cannot follow another comparison without parentheses"
        );
    }

    #[test]
    fn old_let_is_the_body_of_a_rec_set() {
        let e = parse(FileId(0), "let { a = 1; body = a; }").expect("parses");
        let ExprKind::Select { target, path, .. } = e.kind else {
            panic!("a selection: {e:?}")
        };
        assert!(matches!(&path[..], [AttrKey::Static(n, _)] if &**n == "body"));
        assert!(matches!(target.kind, ExprKind::Attrs(ref s) if s.recursive));
    }
}
