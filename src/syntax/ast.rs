//! The abstract syntax tree. Every node carries its span; variables carry their
//! lexical address once `scope::resolve` has run. Nested attribute paths are
//! already merged (`a.b = 1; a.c = 2;` is one `a`), as Nix does at parse time.

use super::span::Span;
use std::cell::Cell;
use std::collections::HashMap;
use std::rc::Rc;

pub type Name = Rc<str>;

#[derive(Debug, Clone)]
pub struct Expr {
    pub span: Span,
    pub kind: ExprKind,
}

#[derive(Debug, Clone)]
pub enum ExprKind {
    Int(i64),
    Float(f64),
    /// A string literal, plain or indented, after escapes and indentation.
    Str(Vec<StrPart>),
    /// A path literal as written: `./x`, `../x`, `/x`, `~/x`, `a/b`.
    Path(String),
    /// `<bottle/lib.bottle>`: the text between the brackets.
    SearchPath(String),
    Var(Var),
    List(Vec<Rc<Expr>>),
    Attrs(Box<AttrSet>),
    Let(Box<AttrSet>, Box<Expr>),
    Select {
        target: Box<Expr>,
        path: Vec<AttrKey>,
        default: Option<Box<Expr>>,
    },
    HasAttr {
        target: Box<Expr>,
        path: Vec<AttrKey>,
    },
    Apply {
        func: Box<Expr>,
        arg: Rc<Expr>,
    },
    Lambda(Rc<Lambda>),
    If {
        cond: Box<Expr>,
        then: Box<Expr>,
        otherwise: Box<Expr>,
    },
    Assert {
        cond: Box<Expr>,
        body: Box<Expr>,
    },
    With {
        scope: Rc<Expr>,
        body: Box<Expr>,
    },
    Unary(UnaryOp, Box<Expr>),
    Binary(BinaryOp, Box<Expr>, Box<Expr>),
}

#[derive(Debug, Clone)]
pub enum StrPart {
    Literal(String),
    Interpolation(Box<Expr>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnaryOp {
    Negate,
    Not,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryOp {
    Concat,
    Mul,
    Div,
    Add,
    Sub,
    Update,
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
    And,
    Or,
    Implies,
}

impl BinaryOp {
    pub fn symbol(self) -> &'static str {
        use BinaryOp::*;
        match self {
            Concat => "++",
            Mul => "*",
            Div => "/",
            Add => "+",
            Sub => "-",
            Update => "//",
            Lt => "<",
            Le => "<=",
            Gt => ">",
            Ge => ">=",
            Eq => "==",
            Ne => "!=",
            And => "&&",
            Or => "||",
            Implies => "->",
        }
    }
}

/// A variable reference and where it lives.
#[derive(Debug, Clone)]
pub struct Var {
    pub name: Name,
    /// Filled in by `scope::resolve`; a `Cell` so resolution needs no `&mut`
    /// (subtrees may be shared between `inherit (e) a b;` copies).
    pub address: Cell<Address>,
}

impl Var {
    pub fn new(name: Name) -> Var {
        Var {
            name,
            address: Cell::new(Address::Unresolved),
        }
    }
}

/// Where a variable's value is found at run time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Address {
    /// Not yet resolved (the parser's output, before `scope::resolve`).
    Unresolved,
    /// `depth` frames up from the current one, slot `index`.
    Local { depth: u32, index: u32 },
    /// Not bound lexically: looked up in the enclosing `with` scopes at run time.
    With,
}

/// One key of an attribute path.
#[derive(Debug, Clone)]
pub enum AttrKey {
    Static(Name, Span),
    Dynamic(Box<Expr>),
}

impl AttrKey {
    pub fn span(&self) -> Span {
        match self {
            AttrKey::Static(_, span) => *span,
            AttrKey::Dynamic(e) => e.span,
        }
    }
}

/// The bindings of an attribute set, `rec` set or `let`.
#[derive(Debug, Clone, Default)]
pub struct AttrSet {
    pub recursive: bool,
    /// Statically named attributes in definition order; names are unique.
    pub statics: Vec<StaticAttr>,
    /// `${e} = v;` attributes, evaluated when the set is built.
    pub dynamics: Vec<DynamicAttr>,
    /// Position of each static name in `statics` once there are more than
    /// `INDEXED_FROM`, so building a set with many bindings stays linear;
    /// a small set is searched in place.
    index: HashMap<Name, usize, foldhash::fast::RandomState>,
}

/// How many static attributes a set has before `AttrSet::index` is kept.
const INDEXED_FROM: usize = 16;

impl AttrSet {
    fn position(&self, name: &str) -> Option<usize> {
        if self.index.is_empty() {
            self.statics.iter().position(|a| &*a.name == name)
        } else {
            self.index.get(name).copied()
        }
    }

    pub fn find(&self, name: &str) -> Option<&StaticAttr> {
        self.position(name).map(|i| &self.statics[i])
    }

    pub fn find_mut(&mut self, name: &str) -> Option<&mut StaticAttr> {
        self.position(name).map(|i| &mut self.statics[i])
    }

    /// Add an attribute whose name is not in the set yet.
    pub fn push_static(&mut self, attr: StaticAttr) {
        self.statics.push(attr);
        if self.statics.len() > INDEXED_FROM {
            if self.index.is_empty() {
                let names = self.statics.iter().enumerate();
                self.index = names.map(|(i, a)| (a.name.clone(), i)).collect();
            } else {
                let last = self.statics.len() - 1;
                self.index.insert(self.statics[last].name.clone(), last);
            }
        }
    }
}

#[derive(Debug, Clone)]
pub struct StaticAttr {
    pub name: Name,
    /// The span of the name where it was defined.
    pub span: Span,
    pub value: Rc<Expr>,
    /// `inherit x;`: the value is looked up in the scope around the set, even
    /// in `rec` sets and `let`.
    pub inherited: bool,
}

#[derive(Debug, Clone)]
pub struct DynamicAttr {
    pub key: Expr,
    pub value: Rc<Expr>,
}

#[derive(Debug, Clone)]
pub struct Lambda {
    pub param: Param,
    pub body: Expr,
    pub span: Span,
}

#[derive(Debug, Clone)]
pub enum Param {
    Ident(Name, Span),
    Formals {
        formals: Vec<Formal>,
        ellipsis: bool,
        bind: Option<(Name, Span)>,
    },
}

#[derive(Debug, Clone)]
pub struct Formal {
    pub name: Name,
    pub span: Span,
    pub default: Option<Rc<Expr>>,
}

impl Param {
    /// The names the lambda binds, in slot order.
    pub fn names(&self) -> Vec<Name> {
        match self {
            Param::Ident(n, _) => vec![n.clone()],
            Param::Formals { formals, bind, .. } => formals
                .iter()
                .map(|f| f.name.clone())
                .chain(bind.iter().map(|(n, _)| n.clone()))
                .collect(),
        }
    }
}
