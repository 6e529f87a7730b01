//! A generator of random, closed, well-formed Nix expressions for the differential
//! fuzzer. Expressions are typed as they are built (an `Int` slot gets an expression
//! meant to give an int), so most of them evaluate to a value instead of a type error;
//! errors still come in on purpose (`throw`, a failing `assert`, a missing attribute, an
//! empty `head`), and often behind laziness that must keep them from firing.
//!
//! An expression is a tree of [`Node`]s so a disagreement can be shrunk by replacing
//! subtrees with smaller ones of the same type.

/// A seeded pseudo-random source (splitmix64): the same seed, the same expressions.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// True with probability `percent`/100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// What an expression is meant to evaluate to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ty {
    Int,
    Float,
    Bool,
    Str,
    Null,
    IntList,
    StrList,
    AnyList,
    Attrs,
    /// Any of the above.
    Any,
}

const CONCRETE: &[Ty] = &[
    Ty::Int,
    Ty::Int,
    Ty::Float,
    Ty::Bool,
    Ty::Str,
    Ty::Str,
    Ty::Null,
    Ty::IntList,
    Ty::StrList,
    Ty::AnyList,
    Ty::Attrs,
    Ty::Attrs,
];

/// Source text with typed holes: a subexpression is a `Node::Expr`.
#[derive(Clone, Debug)]
pub enum Node {
    Text(String),
    Expr(Ty, Vec<Node>),
}

impl Node {
    pub fn render(&self) -> String {
        let mut out = String::new();
        self.render_into(&mut out);
        out
    }

    fn render_into(&self, out: &mut String) {
        match self {
            Node::Text(s) => out.push_str(s),
            Node::Expr(_, parts) => {
                for p in parts {
                    p.render_into(out);
                }
            }
        }
    }

    /// The number of expression nodes (the size shrinking reduces).
    pub fn size(&self) -> usize {
        match self {
            Node::Text(_) => 0,
            Node::Expr(_, parts) => 1 + parts.iter().map(Node::size).sum::<usize>(),
        }
    }

    /// Every expression node, pre-order (the root is index 0).
    fn exprs(&self) -> Vec<&Node> {
        let mut out = Vec::new();
        fn walk<'a>(n: &'a Node, out: &mut Vec<&'a Node>) {
            if let Node::Expr(_, parts) = n {
                out.push(n);
                for p in parts {
                    walk(p, out);
                }
            }
        }
        walk(self, &mut out);
        out
    }

    /// A copy with the `index`-th expression node (pre-order) replaced.
    fn replaced(&self, index: usize, with: &Node) -> Node {
        fn walk(n: &Node, index: usize, with: &Node, counter: &mut usize) -> Node {
            match n {
                Node::Text(_) => n.clone(),
                Node::Expr(ty, parts) => {
                    let mine = *counter;
                    *counter += 1;
                    if mine == index {
                        return with.clone();
                    }
                    Node::Expr(
                        *ty,
                        parts
                            .iter()
                            .map(|p| walk(p, index, with, counter))
                            .collect(),
                    )
                }
            }
        }
        walk(self, index, with, &mut 0)
    }

    /// Smaller variants of this expression: each expression node replaced by the
    /// simplest value of its type, or by one of its own subexpressions of the same
    /// type. Smallest first.
    pub fn shrink_candidates(&self) -> Vec<Node> {
        let nodes = self.exprs();
        let mut out = Vec::new();
        for (i, n) in nodes.iter().enumerate() {
            let Node::Expr(ty, _) = n else { continue };
            let simple = simplest(*ty);
            if n.render() != simple.render() {
                out.push(self.replaced(i, &simple));
            }
            for sub in n.exprs().into_iter().skip(1) {
                if let Node::Expr(sub_ty, _) = sub {
                    if sub_ty == ty || *ty == Ty::Any || i == 0 {
                        out.push(self.replaced(i, sub));
                    }
                }
            }
        }
        out.sort_by_key(Node::size);
        out
    }
}

fn text(s: impl Into<String>) -> Node {
    Node::Text(s.into())
}

/// The simplest expression of a type.
fn simplest(ty: Ty) -> Node {
    let s = match ty {
        Ty::Int | Ty::Any => "0",
        Ty::Float => "0.5",
        Ty::Bool => "true",
        Ty::Str => "\"\"",
        Ty::Null => "null",
        Ty::IntList | Ty::StrList | Ty::AnyList => "[ ]",
        Ty::Attrs => "{ }",
    };
    Node::Expr(ty, vec![text(s)])
}

/// A variable in scope: its name, its type, and whether it comes from a `with`
/// (a lexical binding of the same name wins over it wherever it is).
#[derive(Clone)]
struct Var {
    name: String,
    ty: Ty,
    from_with: bool,
}

/// Names for variables (never attribute names, so a `rec` set cannot capture them).
const VAR_NAMES: &[&str] = &["x", "y", "z", "n", "s", "f'", "a-b", "_v"];
/// Names for attributes (and so for what a `with` brings into scope).
const ATTR_NAMES: &[&str] = &["a", "b", "c", "d", "e"];
const FANCY_ATTR_NAMES: &[&str] = &[
    "\"with space\"",
    "\"\"",
    "\"é\"",
    "\"1\"",
    "A",
    "_",
    "\"a.b\"",
    "\"${\"",
];

pub struct Gen {
    pub rng: Rng,
    scope: Vec<Var>,
    fresh: usize,
}

macro_rules! expr {
    ($ty:expr; $($part:expr),* $(,)?) => {
        Node::Expr($ty, vec![$(Into::<Node>::into($part)),*])
    };
}

impl From<&str> for Node {
    fn from(s: &str) -> Node {
        Node::Text(s.to_owned())
    }
}

impl From<String> for Node {
    fn from(s: String) -> Node {
        Node::Text(s)
    }
}

impl Gen {
    pub fn new(seed: u64) -> Gen {
        Gen {
            rng: Rng::new(seed),
            scope: Vec::new(),
            fresh: 0,
        }
    }

    /// A whole expression of any type.
    pub fn expression(&mut self) -> Node {
        self.scope.clear();
        let depth = 2 + self.rng.below(4) as u32;
        let ty = *self.rng.pick(CONCRETE);
        self.gen(ty, depth)
    }

    /// Variables usable as `ty` right now: a `with` variable only when no lexical
    /// binding of that name is in scope.
    fn visible(&self, ty: Ty) -> Vec<String> {
        let mut out = Vec::new();
        for (i, v) in self.scope.iter().enumerate() {
            let shadowed_later = self.scope[i + 1..]
                .iter()
                .any(|w| w.name == v.name && (!w.from_with || v.from_with));
            let lexical_elsewhere =
                v.from_with && self.scope.iter().any(|w| w.name == v.name && !w.from_with);
            if !shadowed_later && !lexical_elsewhere && (v.ty == ty || ty == Ty::Any) {
                out.push(v.name.clone());
            }
        }
        out
    }

    /// Run `f` with `vars` added to the scope and the names in `hide` removed.
    fn scoped<T>(&mut self, hide: &[String], vars: Vec<Var>, f: impl FnOnce(&mut Gen) -> T) -> T {
        let saved = self.scope.clone();
        self.scope.retain(|v| !hide.contains(&v.name));
        self.scope.extend(vars);
        let r = f(self);
        self.scope = saved;
        r
    }

    fn concrete(&mut self) -> Ty {
        *self.rng.pick(CONCRETE)
    }

    pub fn gen(&mut self, ty: Ty, depth: u32) -> Node {
        let ty = if ty == Ty::Any { self.concrete() } else { ty };
        if depth == 0 || self.rng.chance(12) {
            return self.leaf(ty);
        }
        let d = depth - 1;
        if self.rng.chance(30) {
            if let Some(n) = self.generic(ty, d) {
                return n;
            }
        }
        match ty {
            Ty::Int => self.int(d),
            Ty::Float => self.float(d),
            Ty::Bool => self.bool(d),
            Ty::Str => self.string(d),
            Ty::Null => self.null(d),
            Ty::IntList => self.int_list(d),
            Ty::StrList => self.str_list(d),
            Ty::AnyList => self.any_list(d),
            Ty::Attrs => self.attrs(d),
            Ty::Any => unreachable!("resolved above"),
        }
    }

    fn leaf(&mut self, ty: Ty) -> Node {
        let vars = self.visible(ty);
        if !vars.is_empty() && self.rng.chance(50) {
            let v = self.rng.pick(&vars).clone();
            return expr!(ty; v);
        }
        match ty {
            Ty::Int => {
                let n = match self.rng.below(10) {
                    0 => "(-3)".to_owned(),
                    1 => "123456789".to_owned(),
                    2 => "007".to_owned(),
                    _ => self.rng.below(20).to_string(),
                };
                expr!(ty; n)
            }
            Ty::Float => {
                let f = *self.rng.pick(&[
                    "1.5", "0.1", "2.0", "1.", ".5", "1.5e3", "2.5E-2", "100.0", "0.3", "1.0e20",
                    "123456.5", "1.0e-7", "(-0.25)", "(-0.0)", "0.1e1", "1.0e308",
                ]);
                expr!(ty; f)
            }
            Ty::Bool => expr!(ty; *self.rng.pick(&["true", "false"])),
            Ty::Str if self.rng.chance(10) => expr!(ty; *self.rng.pick(&[
                r#"(builtins.fromJSON "\"\\u0001\\u001f\\u00e9\\b\\f\\/\"")"#,
                r#"(builtins.fromJSON "\"\\ud83d\\ude00 tab\\t\"")"#,
                "(builtins.typeOf (x: x))",
                "(builtins.typeOf 1.5)",
                "''\n  a\n\tb\n  ''",
                "''  x ''${\"y\"}''",
                r#""\${""#,
                r"''''\''${x}''",
            ])),
            Ty::Str => self.string_literal(),
            Ty::Null => expr!(ty; "null"),
            Ty::IntList => {
                let n = self.rng.below(4);
                let items: Vec<String> = (0..n).map(|_| self.rng.below(10).to_string()).collect();
                expr!(ty; format!("[ {} ]", items.join(" ")))
            }
            Ty::StrList => {
                let n = self.rng.below(4);
                let items: Vec<String> = (0..n)
                    .map(|_| format!("\"{}\"", self.rng.pick(&["a", "b", "1.2", "x-y", ""])))
                    .collect();
                expr!(ty; format!("[ {} ]", items.join(" ")))
            }
            Ty::AnyList => expr!(ty; *self.rng.pick(&["[ ]", "[ 1 \"a\" null ]", "[ [ ] { } ]"])),
            Ty::Attrs => {
                expr!(ty; *self.rng.pick(&["{ }", "{ a = 1; }", "{ a = { b = \"x\"; }; c = [ ]; }"]))
            }
            Ty::Any => unreachable!("resolved before"),
        }
    }

    fn string_literal(&mut self) -> Node {
        let n = self.rng.below(4);
        let mut s = String::from("\"");
        for _ in 0..n {
            let piece: &&str = self.rng.pick(&[
                "a", "b", "hello", " ", "\\n", "\\t", "\\\\", "\\\"", "\\$", "$", "\\${x}", "é",
                "1.2", "-", "$${", "\\a", "/",
            ]);
            s.push_str(piece);
        }
        s.push('"');
        expr!(Ty::Str; s)
    }

    fn fresh_var(&mut self) -> String {
        self.fresh += 1;
        self.rng.pick(VAR_NAMES).to_string()
    }

    /// Forms that work for every type: binding, branching, functions, laziness, errors.
    fn generic(&mut self, ty: Ty, d: u32) -> Option<Node> {
        Some(match self.rng.below(16) {
            0 | 1 => self.let_in(ty, d),
            2 => {
                let c = self.gen(Ty::Bool, d);
                let a = self.gen(ty, d);
                let b = self.gen(ty, d);
                expr!(ty; "(if ", c, " then ", a, " else ", b, ")")
            }
            3 => {
                let name = self.fresh_var();
                let argty = self.concrete();
                let arg = self.gen(argty, d);
                let body = self.scoped(
                    std::slice::from_ref(&name),
                    vec![Var {
                        name: name.clone(),
                        ty: argty,
                        from_with: false,
                    }],
                    |g| g.gen(ty, d),
                );
                expr!(ty; format!("(({name}: "), body, ") ", arg, ")")
            }
            4 => self.pattern_call(ty, d),
            5 => self.with(ty, d),
            6 => {
                let c = self.gen(Ty::Bool, d);
                let b = self.gen(ty, d);
                expr!(ty; "(assert ", c, "; ", b, ")")
            }
            7 => {
                // A value next to a failing one that must stay unforced.
                let v = self.gen(ty, d);
                let bad = self.error(d);
                match self.rng.below(4) {
                    0 => expr!(ty; "{ a = ", v, "; b = ", bad, "; }.a"),
                    1 => expr!(ty; "(builtins.head [ ", v, " ", bad, " ])"),
                    2 => expr!(ty; "((_unused: ", v, ") ", bad, ")"),
                    _ => expr!(ty; "(let _unused = ", bad, "; in ", v, ")"),
                }
            }
            8 => {
                let v = self.gen(ty, d);
                let default = self.gen(ty, d);
                let name = self.rng.pick(ATTR_NAMES);
                let set = self.attrs(d);
                if self.rng.chance(50) {
                    expr!(ty; "({ ", name.to_string(), " = ", v, "; }.", name.to_string(), " or ", default, ")")
                } else {
                    expr!(ty; "(", set, ".", name.to_string(), " or ", default, ")")
                }
            }
            9 => {
                let a = self.gen(Ty::Any, d);
                let v = self.gen(ty, d);
                let f = *self.rng.pick(&["builtins.seq", "builtins.deepSeq"]);
                expr!(ty; format!("({f} "), a, " ", v, ")")
            }
            10 => {
                let v = self.gen(ty, d);
                expr!(ty; "(builtins.getAttr \"k\" { k = ", v, "; })")
            }
            11 => {
                let name = self.rng.pick(ATTR_NAMES).to_string();
                let v = self.scoped(std::slice::from_ref(&name), vec![], |g| g.gen(ty, d));
                expr!(ty; format!("(rec {{ {name} = "), v, format!("; r = {name}; }}.r)"))
            }
            12 => {
                // An error that reaches the top (or a tryEval wrapped around it).
                if self.rng.chance(70) {
                    self.error(d)
                } else {
                    return None;
                }
            }
            13 => {
                let v = self.gen(ty, d);
                let i = self.rng.below(3);
                let other1 = self.gen(ty, d);
                let other2 = self.gen(ty, d);
                expr!(ty; format!("(builtins.elemAt [ "), other1, " ", v, " ", other2, format!(" ] {i})"))
            }
            14 => {
                let v = self.gen(ty, d);
                expr!(ty; "(builtins.foldl' (acc: x: x) (throw \"initial\") [ ", v, " ])")
            }
            _ => {
                let v = self.gen(ty, d);
                expr!(ty; "(builtins.addErrorContext \"context\" ", v, ")")
            }
        })
    }

    fn error(&mut self, d: u32) -> Node {
        match self.rng.below(10) {
            0..=5 => {
                let msg = self.gen(Ty::Str, d.min(1));
                expr!(Ty::Any; "(throw ", msg, ")")
            }
            6 | 7 => expr!(Ty::Any; "(assert false; 1)"),
            8 => expr!(Ty::Any; "(abort \"stop\")"),
            9 if self.rng.chance(60) => expr!(Ty::Any; *self.rng.pick(&[
                "(builtins.substring (-1) 1 \"abc\")",
                "(builtins.genList (x: x) (-1))",
                "(builtins.elemAt [ 1 ] (-1))",
                "(builtins.fromJSON \"{\")",
                "(builtins.hashString \"sha3\" \"\")",
                "(builtins.tail [ ])",
                "(builtins.replaceStrings [ \"a\" ] [ ] \"a\")",
                "(builtins.getAttr \"x\" { })",
                "(1 2)",
                "(({ a }: a) { a = 1; b = 2; })",
                "(({ a }: a) { })",
                "(builtins.concatStringsSep \",\" [ 1 ])",
                "(\"a\" + 1)",
                "(1 + \"a\")",
                "(builtins.match \"(\" \"a\")",
                "(builtins.toJSON (x: x))",
                "(let x = x; in x)",
                "(builtins.seq (builtins.throw \"s\") 1)",
                "(builtins.fromTOML \"a = \")",
                "(builtins.listToAttrs [ { name = 1; value = 2; } ])",
                "(builtins.mapAttrs 1 { a = 1; })",
                "(1 < \"a\")",
                "(1 / 0)",
                "(builtins.functionArgs 1)",
                "(builtins.import ./fuzz-no-such-file.nix)",
                "(builtins.readFile /fuzz-no-such-file)",
                "(toString (x: x))",
                "(builtins.addErrorContext \"ctx\" (throw \"inner\"))",
            ])),
            _ => expr!(Ty::Any; "{ }.missing"),
        }
    }

    fn let_in(&mut self, ty: Ty, d: u32) -> Node {
        let n = 1 + self.rng.below(3);
        let names: Vec<String> = {
            let mut v: Vec<String> = (0..n).map(|_| self.fresh_var()).collect();
            v.sort();
            v.dedup();
            v
        };
        let mut parts: Vec<Node> = vec![text("(let ")];
        let mut bound = Vec::new();
        for name in &names {
            if self.rng.chance(15) {
                // An `inherit` of an outer variable of the same name, if there is one.
                let outer: Vec<Var> = self
                    .scope
                    .iter()
                    .filter(|v| &v.name == name)
                    .cloned()
                    .collect();
                if let Some(v) = outer.last() {
                    let ok = self.visible(v.ty).contains(name);
                    if ok {
                        parts.push(text(format!("inherit {name}; ")));
                        bound.push(Var {
                            name: name.clone(),
                            ty: v.ty,
                            from_with: false,
                        });
                        continue;
                    }
                }
            }
            let vty = self.concrete();
            let value = if self.rng.chance(10) {
                self.error(d)
            } else {
                let earlier = bound.clone();
                self.scoped(&names, earlier, |g| g.gen(vty, d))
            };
            parts.push(text(format!("{name} = ")));
            parts.push(value);
            parts.push(text("; "));
            bound.push(Var {
                name: name.clone(),
                ty: vty,
                from_with: false,
            });
        }
        let body = self.scoped(&names, bound, |g| g.gen(ty, d));
        parts.push(text("in "));
        parts.push(body);
        parts.push(text(")"));
        Node::Expr(ty, parts)
    }

    fn pattern_call(&mut self, ty: Ty, d: u32) -> Node {
        // ({ a, b ? default, ... }@args: body) { a = …; c = …; }
        let mut formals = Vec::new();
        let mut vars = Vec::new();
        let mut parts: Vec<Node> = vec![text("(({ ")];
        let names = ["a", "b", "c"];
        let count = 1 + self.rng.below(3);
        let mut passed: Vec<Node> = Vec::new();
        for name in &names[..count] {
            let vty = self.concrete();
            let has_default = self.rng.chance(50);
            let pass = !has_default || self.rng.chance(50);
            formals.push(name.to_string());
            if has_default {
                let hide: Vec<String> = names.iter().map(|n| n.to_string()).collect();
                let def = self.scoped(&hide, vec![], |g| g.gen(vty, d));
                parts.push(text(format!("{name} ? ")));
                parts.push(def);
                parts.push(text(", "));
            } else {
                parts.push(text(format!("{name}, ")));
            }
            if pass {
                passed.push(text(format!("{name} = ")));
                passed.push(self.gen(vty, d));
                passed.push(text("; "));
            }
            vars.push(Var {
                name: name.to_string(),
                ty: vty,
                from_with: false,
            });
        }
        let ellipsis = self.rng.chance(50);
        if ellipsis {
            parts.push(text("... "));
            if self.rng.chance(50) {
                passed.push(text("extra = "));
                passed.push(self.error(d));
                passed.push(text("; "));
            }
        }
        parts.push(text("}"));
        let mut hide: Vec<String> = formals.clone();
        if self.rng.chance(30) {
            parts.push(text("@args"));
            hide.push("args".into());
            vars.push(Var {
                name: "args".into(),
                ty: Ty::Attrs,
                from_with: false,
            });
        }
        parts.push(text(": "));
        let body = self.scoped(&hide, vars, |g| g.gen(ty, d));
        parts.push(body);
        parts.push(text(") { "));
        parts.extend(passed);
        parts.push(text("})"));
        Node::Expr(ty, parts)
    }

    fn with(&mut self, ty: Ty, d: u32) -> Node {
        let (set, names) = self.attrs_literal(d, false);
        let vars = names
            .into_iter()
            .map(|(name, vty)| Var {
                name,
                ty: vty,
                from_with: true,
            })
            .collect();
        let body = self.scoped(&[], vars, |g| g.gen(ty, d));
        expr!(ty; "(with ", set, "; ", body, ")")
    }

    /// A set literal; returns it and its plain top-level names with their types.
    fn attrs_literal(&mut self, d: u32, allow_rec: bool) -> (Node, Vec<(String, Ty)>) {
        let recursive = allow_rec && self.rng.chance(30);
        let count = self.rng.below(5);
        let mut parts: Vec<Node> = vec![text(if recursive { "rec { " } else { "{ " })];
        // name → Some(type) for a value, None for a prefix of nested paths.
        let mut defined: Vec<(String, Option<Ty>, Vec<String>)> = Vec::new();
        let mut plain = Vec::new();
        let all_names: Vec<String> = ATTR_NAMES.iter().map(|s| s.to_string()).collect();
        let hide: Vec<String> = if recursive { all_names } else { Vec::new() };
        for _ in 0..count {
            // In a `rec` set every value (and dynamic name, and `inherit (e)` source)
            // sees the set's names; give them the ones defined so far.
            let saved = self.scope.clone();
            if recursive {
                self.scope.retain(|v| !hide.contains(&v.name));
                for (n, t, _) in &defined {
                    if ATTR_NAMES.contains(&n.as_str()) || VAR_NAMES.contains(&n.as_str()) {
                        self.scope.push(Var {
                            name: n.clone(),
                            ty: t.unwrap_or(Ty::Attrs),
                            from_with: false,
                        });
                    }
                }
            }
            let spelled = |g: &mut Gen, name: &str| -> String {
                match g.rng.below(8) {
                    0 => format!("\"{name}\""),
                    1 => format!("${{\"{name}\"}}"),
                    _ => name.to_string(),
                }
            };
            let vty = self.concrete();
            match self.rng.below(10) {
                0 => {
                    let inheritable: Vec<String> = VAR_NAMES
                        .iter()
                        .map(|s| s.to_string())
                        .filter(|n| self.visible(Ty::Any).contains(n))
                        .filter(|n| !defined.iter().any(|(m, _, _)| m == n))
                        .collect();
                    if let Some(name) = inheritable.first() {
                        parts.push(text(format!("inherit {name}; ")));
                        let t = self
                            .scope
                            .iter()
                            .rev()
                            .find(|v| &v.name == name)
                            .map(|v| v.ty);
                        defined.push((name.clone(), t, Vec::new()));
                    }
                }
                1 => {
                    let src = self.attrs(d.min(1));
                    let name = self.rng.pick(ATTR_NAMES).to_string();
                    if !defined.iter().any(|(m, _, _)| *m == name) {
                        parts.push(text("inherit ("));
                        parts.push(src);
                        parts.push(text(format!(") {name}; ")));
                        defined.push((name, Some(Ty::Any), Vec::new()));
                    }
                }
                2 => {
                    // A dynamic name: may collide with a static one (an error in both).
                    let key = self.gen(Ty::Str, d.min(1));
                    let v = self.gen(vty, d);
                    parts.push(text("${"));
                    parts.push(key);
                    parts.push(text("} = "));
                    parts.push(v);
                    parts.push(text("; "));
                }
                3 => {
                    let name = self.rng.pick(FANCY_ATTR_NAMES).to_string();
                    if !defined.iter().any(|(m, _, _)| *m == name) {
                        let v = self.gen(vty, d);
                        parts.push(text(format!("{name} = ")));
                        parts.push(v);
                        parts.push(text("; "));
                        defined.push((name, Some(vty), Vec::new()));
                    }
                }
                4..=6 => {
                    // A nested path `a.b = …`, merging with earlier `a.…` paths.
                    let name = self.rng.pick(ATTR_NAMES).to_string();
                    let sub = self.rng.pick(ATTR_NAMES).to_string();
                    let entry = defined.iter_mut().find(|(m, _, _)| *m == name);
                    let ok = match entry {
                        None => {
                            defined.push((name.clone(), None, vec![sub.clone()]));
                            true
                        }
                        Some((_, None, subs)) if !subs.contains(&sub) => {
                            subs.push(sub.clone());
                            true
                        }
                        _ => false,
                    };
                    if ok {
                        let v = self.gen(vty, d);
                        let spelled_name = spelled(self, &name);
                        let spelled_sub = spelled(self, &sub);
                        parts.push(text(format!("{spelled_name}.{spelled_sub} = ")));
                        parts.push(v);
                        parts.push(text("; "));
                    }
                }
                _ => {
                    let name = self.rng.pick(ATTR_NAMES).to_string();
                    if !defined.iter().any(|(m, _, _)| *m == name) {
                        let v = if self.rng.chance(8) {
                            self.error(d)
                        } else {
                            self.gen(vty, d)
                        };
                        let spelled_name = spelled(self, &name);
                        parts.push(text(format!("{spelled_name} = ")));
                        parts.push(v);
                        parts.push(text("; "));
                        defined.push((name.clone(), Some(vty), Vec::new()));
                        plain.push((name, vty));
                    }
                }
            }
            self.scope = saved;
        }
        parts.push(text("}"));
        (Node::Expr(Ty::Attrs, parts), plain)
    }

    fn int(&mut self, d: u32) -> Node {
        let t = Ty::Int;
        match self.rng.below(26) {
            0..=2 => {
                let a = self.gen(t, d);
                let b = self.gen(t, d);
                let op = *self.rng.pick(&["+", "-", "*"]);
                expr!(t; "(", a, format!(" {op} "), b, ")")
            }
            3 => {
                let a = self.gen(t, d);
                let b = *self.rng.pick(&["2", "3", "(-2)", "7"]);
                expr!(t; "(", a, " / ", b, ")")
            }
            4 => {
                let l = self.gen(Ty::AnyList, d);
                expr!(t; "(builtins.length ", l, ")")
            }
            5 => {
                let s = self.gen(Ty::Str, d);
                expr!(t; "(builtins.stringLength ", s, ")")
            }
            6 => {
                let init = self.gen(t, d);
                let l = self.gen(Ty::IntList, d);
                let op = *self.rng.pick(&["+", "-", "*"]);
                expr!(t; format!("(builtins.foldl' (acc: x: acc {op} x) "), init, " ", l, ")")
            }
            7 => {
                let a = self.gen(Ty::Str, d);
                let b = self.gen(Ty::Str, d);
                expr!(t; "(builtins.compareVersions ", a, " ", b, ")")
            }
            8 => {
                let f = *self.rng.pick(&[
                    "builtins.bitAnd",
                    "builtins.bitOr",
                    "builtins.bitXor",
                    "builtins.add",
                    "builtins.sub",
                    "builtins.mul",
                ]);
                let a = self.gen(t, d);
                let b = self.gen(t, d);
                expr!(t; format!("({f} "), a, " ", b, ")")
            }
            9 => {
                let f = *self.rng.pick(&["builtins.floor", "builtins.ceil"]);
                let x = self.gen(Ty::Float, d);
                expr!(t; format!("({f} "), x, ")")
            }
            10 => {
                let l = self.gen(Ty::IntList, d);
                expr!(t; "(builtins.head ", l, ")")
            }
            11 => {
                let l = self.gen(Ty::IntList, d);
                let i = self.rng.below(3);
                expr!(t; "(builtins.elemAt ", l, format!(" {i})"))
            }
            12 => {
                let a = self.gen(Ty::Attrs, d);
                expr!(t; "(builtins.length (builtins.attrNames ", a, "))")
            }
            13 => {
                let v = self.gen(t, d);
                expr!(t; "(builtins.fromJSON (builtins.toJSON ", v, "))")
            }
            14 => {
                let a = self.gen(t, d);
                let b = self.gen(t, d);
                expr!(t; "(builtins.div ", a, " ", b, ")")
            }
            15 => {
                let s = *self.rng.pick(&["\"42\"", "\"-7\"", "\"1e2\"", "\" 3 \""]);
                expr!(t; format!("(builtins.fromJSON {s})"))
            }
            16 => {
                let l = self.gen(Ty::IntList, d);
                expr!(t; "(builtins.foldl' builtins.add 0 ", l, ")")
            }
            17 => {
                let x = self.gen(t, d);
                expr!(t; "(-", x, ")")
            }
            20 => {
                let n = self.rng.below(30);
                expr!(t; format!("(let f = n: if n <= 0 then 0 else n + f (n - 1); in f {n})"))
            }
            21 => {
                let a = self.gen(t, d);
                let f = *self
                    .rng
                    .pick(&["builtins.bitAnd", "builtins.bitOr", "builtins.bitXor"]);
                expr!(t; format!("({f} (-6) "), a, ")")
            }
            18 => {
                let n = self.gen(t, d);
                let arg = self.gen(t, d);
                expr!(t; "({ __functor = self: x: x + self.n; n = ", n, "; } ", arg, ")")
            }
            19 => {
                let n = self.rng.below(6);
                expr!(t; format!("(builtins.length (builtins.genericClosure {{ startSet = [ {{ key = 1; }} {{ key = 3; }} ]; operator = item: if item.key < {n} then [ {{ key = item.key + 1; }} {{ key = item.key * 2; }} ] else [ ]; }}))"))
            }
            _ => self.leaf(t),
        }
    }

    fn float(&mut self, d: u32) -> Node {
        let t = Ty::Float;
        match self.rng.below(8) {
            0..=2 => {
                let a = self.gen(t, d);
                let b = if self.rng.chance(50) {
                    self.gen(t, d)
                } else {
                    self.gen(Ty::Int, d)
                };
                let op = *self.rng.pick(&["+", "-", "*"]);
                expr!(t; "(", a, format!(" {op} "), b, ")")
            }
            3 => {
                let a = self.gen(t, d);
                let b = *self.rng.pick(&["3", "0.3", "7.0", "(-2)"]);
                expr!(t; "(", a, " / ", b, ")")
            }
            4 => {
                let a = self.gen(Ty::Int, d);
                let b = self.gen(t, d);
                expr!(t; "(builtins.div ", a, " ", b, ")")
            }
            5 => {
                let a = self.gen(t, d);
                expr!(t; "(builtins.fromJSON (builtins.toJSON ", a, "))")
            }
            _ => self.leaf(t),
        }
    }

    fn bool(&mut self, d: u32) -> Node {
        let t = Ty::Bool;
        match self.rng.below(18) {
            0 => {
                let a = self.gen(t, d);
                expr!(t; "(!", a, ")")
            }
            1 | 2 => {
                let a = self.gen(t, d);
                let b = self.gen(t, d);
                let op = *self.rng.pick(&["&&", "||", "->"]);
                expr!(t; "(", a, format!(" {op} "), b, ")")
            }
            3 | 4 => {
                let ty = *self.rng.pick(&[Ty::Int, Ty::Float, Ty::Str, Ty::IntList]);
                let a = self.gen(ty, d);
                let b = self.gen(ty, d);
                let op = *self.rng.pick(&["<", "<=", ">", ">="]);
                expr!(t; "(", a, format!(" {op} "), b, ")")
            }
            5 | 6 => {
                let a = self.gen(Ty::Any, d);
                let b = if self.rng.chance(50) {
                    a.clone()
                } else {
                    self.gen(Ty::Any, d)
                };
                let op = *self.rng.pick(&["==", "!="]);
                expr!(t; "(", a, format!(" {op} "), b, ")")
            }
            7 => {
                let a = self.gen(Ty::Attrs, d);
                let path = self
                    .rng
                    .pick(&["a", "b", "a.b", "\"with space\"", "${\"c\"}", "x.y.z"]);
                expr!(t; "(", a, format!(" ? {path})"))
            }
            8 => {
                let f = *self.rng.pick(&[
                    "builtins.isInt",
                    "builtins.isFloat",
                    "builtins.isString",
                    "builtins.isList",
                    "builtins.isAttrs",
                    "builtins.isBool",
                    "builtins.isNull",
                    "isNull",
                    "builtins.isFunction",
                    "builtins.isPath",
                ]);
                let a = self.gen(Ty::Any, d);
                expr!(t; format!("({f} "), a, ")")
            }
            9 => {
                let x = self.gen(Ty::Int, d);
                let l = self.gen(Ty::IntList, d);
                expr!(t; "(builtins.elem ", x, " ", l, ")")
            }
            10 => {
                let s = self.gen(Ty::Str, d);
                let a = self.gen(Ty::Attrs, d);
                expr!(t; "(builtins.hasAttr ", s, " ", a, ")")
            }
            11 => {
                let f = *self.rng.pick(&["builtins.all", "builtins.any"]);
                let p = self.scoped(
                    &["x".into()],
                    vec![Var {
                        name: "x".into(),
                        ty: Ty::Int,
                        from_with: false,
                    }],
                    |g| g.gen(t, d),
                );
                let l = self.gen(Ty::IntList, d);
                expr!(t; format!("({f} (x: "), p, ") ", l, ")")
            }
            12 => {
                let a = self.gen(Ty::Any, d);
                expr!(t; "(builtins.tryEval ", a, ").success")
            }
            13 => {
                let a = self.gen(Ty::Int, d);
                let b = self.gen(Ty::Int, d);
                expr!(t; "(builtins.lessThan ", a, " ", b, ")")
            }
            14 => {
                expr!(t; *self.rng.pick(&["(builtins.isPath ./a/b)", "(builtins.isPath ~/x)", "(builtins.tryEval <fuzz-missing>).success", "(builtins.tryEval (import <fuzz-missing/x.nix>)).success", "((f: [ f ] == [ f ]) (x: x))", "(1 == 1.0)", "({ a = 1; } == { a = 1.0; })", "(builtins.isFunction (x: x))", "(builtins.isFunction builtins.map)", "(builtins ? parseDrvName)", "(builtins ? nope)", "(let true = false; in true)", "(builtins.typeOf builtins.map == \"lambda\")", "(\"abc\" < \"abd\")", "(builtins.lessThan \"b\" \"ab\")", "([ 1 2 ] < [ 1 2 0 ])", "({ a = x: x; } == { a = x: x; })", "(let f = x: x; in f == f)", "((x: x) == (x: x))"]))
            }
            _ => self.leaf(t),
        }
    }

    fn string(&mut self, d: u32) -> Node {
        let t = Ty::Str;
        match self.rng.below(30) {
            0 | 1 => {
                let a = self.gen(t, d);
                let b = self.gen(t, d);
                expr!(t; "(", a, " + ", b, ")")
            }
            2 | 3 => {
                let a = self.gen(t, d);
                let pre = *self.rng.pick(&["", "pre ", "\\$", "\\n"]);
                let post = *self.rng.pick(&["", " post", "$$", "\\\""]);
                expr!(t; format!("\"{pre}${{"), a, format!("}}{post}\""))
            }
            4 | 5 => self.indented(d),
            6 | 7 => {
                let ty = *self.rng.pick(&[
                    Ty::Int,
                    Ty::Bool,
                    Ty::Null,
                    Ty::Str,
                    Ty::Float,
                    Ty::IntList,
                    Ty::StrList,
                ]);
                let a = self.gen(ty, d);
                expr!(t; "(toString ", a, ")")
            }
            8 => {
                let start = *self.rng.pick(&["0", "1", "2", "5"]);
                let len = *self.rng.pick(&["0", "1", "3", "100", "(-1)"]);
                let s = self.gen(t, d);
                expr!(t; format!("(builtins.substring {start} {len} "), s, ")")
            }
            9 => {
                let sep = self.gen(t, d);
                let l = self.gen(Ty::StrList, d);
                expr!(t; "(builtins.concatStringsSep ", sep, " ", l, ")")
            }
            10 => {
                let from = *self.rng.pick(&[
                    "[ \"a\" ]",
                    "[ \"a\" \"b\" ]",
                    "[ \"\" ]",
                    "[ \"$\" \"\\n\" ]",
                    "[ ]",
                ]);
                let n = from.matches('"').count() / 2;
                let to: Vec<String> = (0..n)
                    .map(|_| format!("\"{}\"", self.rng.pick(&["x", "", "yy", "a"])))
                    .collect();
                let s = self.gen(t, d);
                expr!(t; format!("(builtins.replaceStrings {from} [ {} ] ", to.join(" ")), s, ")")
            }
            11 | 12 => {
                let a = self.gen(Ty::Any, d);
                expr!(t; "(builtins.typeOf ", a, ")")
            }
            13 | 14 => {
                let a = self.gen(Ty::Any, d);
                expr!(t; "(builtins.toJSON ", a, ")")
            }
            15 => {
                let algo = *self.rng.pick(&["md5", "sha1", "sha256", "sha512"]);
                let s = self.gen(t, d);
                expr!(t; format!("(builtins.hashString \"{algo}\" "), s, ")")
            }
            16 => {
                let field = *self.rng.pick(&["name", "version"]);
                let s = self.gen(t, d);
                expr!(t; "(builtins.parseDrvName ", s, format!(").{field}"))
            }
            17 => {
                let f = *self.rng.pick(&[
                    "baseNameOf",
                    "dirOf",
                    "builtins.baseNameOf",
                    "builtins.dirOf",
                ]);
                let s = self.gen(t, d);
                expr!(t; format!("({f} "), s, ")")
            }
            18 => {
                let s = self.gen(t, d);
                expr!(t; "(builtins.unsafeDiscardStringContext ", s, ")")
            }
            19 => {
                let s = self.gen(t, d);
                expr!(t; "(builtins.head (builtins.splitVersion ", s, " ++ [ \"none\" ]))")
            }
            20 => {
                let a = self.gen(Ty::Attrs, d);
                expr!(t; "(builtins.concatStringsSep \",\" (builtins.attrNames ", a, "))")
            }
            21 => {
                let p = *self.rng.pick(&[
                    "./a/b",
                    "./.",
                    "/x/../y",
                    "./a/../c.nix",
                    "/",
                    "~/x/y",
                    "~/.",
                ]);
                let f = *self.rng.pick(&["baseNameOf", "builtins.typeOf"]);
                expr!(t; format!("({f} {p})"))
            }
            22 => {
                let f = self.gen(Ty::Float, d);
                expr!(t; "(toString ", f, ")")
            }
            23 => {
                let s = self.gen(t, d);
                expr!(t; "({ __toString = self: ", s, "; } + \"\")")
            }
            24 => {
                let a = self.gen(Ty::Any, d);
                expr!(t; "(builtins.toJSON (builtins.fromJSON (builtins.toJSON ", a, ")))")
            }
            _ => self.leaf(t),
        }
    }

    fn indented(&mut self, d: u32) -> Node {
        let mut parts: Vec<Node> = vec![text("''")];
        if self.rng.chance(70) {
            parts.push(text("\n"));
        }
        let lines = 1 + self.rng.below(3);
        for _ in 0..lines {
            let indent = *self.rng.pick(&["", " ", "  ", "    ", "\t"]);
            parts.push(text(indent));
            for _ in 0..self.rng.below(3) {
                if self.rng.chance(20) {
                    parts.push(text("${"));
                    parts.push(self.gen(Ty::Str, d));
                    parts.push(text("}"));
                } else {
                    parts.push(text(*self.rng.pick(&[
                        "a", "b c", "''$", "'''", "''\\n", "''\\t", "$x", "\\n", "$${x}", "é", "'",
                        "''\\x",
                    ])));
                }
            }
            parts.push(text("\n"));
        }
        parts.push(text(*self.rng.pick(&["", "  ", " "])));
        parts.push(text("''"));
        Node::Expr(Ty::Str, parts)
    }

    fn null(&mut self, d: u32) -> Node {
        let t = Ty::Null;
        match self.rng.below(3) {
            0 => {
                let s = self.gen(Ty::Str, d);
                expr!(t; "(builtins.match \"zz\" ", s, ")")
            }
            _ => self.leaf(t),
        }
    }

    fn int_list(&mut self, d: u32) -> Node {
        let t = Ty::IntList;
        match self.rng.below(18) {
            0..=2 => {
                let n = self.rng.below(4);
                let mut parts: Vec<Node> = vec![text("[ ")];
                for _ in 0..n {
                    parts.push(self.gen(Ty::Int, d));
                    parts.push(text(" "));
                }
                parts.push(text("]"));
                Node::Expr(t, parts)
            }
            3 => {
                let a = self.gen(t, d);
                let b = self.gen(t, d);
                expr!(t; "(", a, " ++ ", b, ")")
            }
            4 => {
                let body = self.with_x(Ty::Int, Ty::Int, d);
                let l = self.gen(t, d);
                expr!(t; "(map (x: ", body, ") ", l, ")")
            }
            5 => {
                let body = self.with_x(Ty::Int, Ty::Bool, d);
                let l = self.gen(t, d);
                expr!(t; "(builtins.filter (x: ", body, ") ", l, ")")
            }
            6 => {
                let body = self.with_x(Ty::Int, Ty::Int, d);
                let n = self.rng.below(5);
                expr!(t; "(builtins.genList (x: ", body, format!(") {n})"))
            }
            7 => {
                let op = *self.rng.pick(&["<", ">", "<="]);
                let l = self.gen(t, d);
                expr!(t; format!("(builtins.sort (p: q: p {op} q) "), l, ")")
            }
            8 => {
                let l = self.gen(t, d);
                expr!(t; "(builtins.tail ", l, ")")
            }
            9 => {
                let a = self.gen(t, d);
                let b = self.gen(t, d);
                expr!(t; "(builtins.concatLists [ ", a, " ", b, " ])")
            }
            10 => {
                let body = self.with_x(Ty::Int, Ty::Int, d);
                let l = self.gen(t, d);
                expr!(t; "(builtins.concatMap (x: [ x ", body, " ]) ", l, ")")
            }
            11 => {
                let body = self.with_x(Ty::Int, Ty::Bool, d);
                let l = self.gen(t, d);
                let side = *self.rng.pick(&["right", "wrong"]);
                expr!(t; "(builtins.partition (x: ", body, ") ", l, format!(").{side}"))
            }
            12 => {
                let a = self.gen(Ty::Int, d);
                let b = self.gen(Ty::Int, d);
                expr!(t; "(builtins.catAttrs \"a\" [ { a = ", a, "; } { b = 1; } { a = ", b, "; } ])")
            }
            13 => {
                let a = self.gen(Ty::Int, d);
                let b = self.gen(Ty::Int, d);
                expr!(t; "(builtins.attrValues { b = ", a, "; a = ", b, "; })")
            }
            14 => {
                let l = self.gen(t, d);
                expr!(t; "(builtins.fromJSON (builtins.toJSON ", l, "))")
            }
            _ => self.leaf(t),
        }
    }

    /// An expression of type `ty` that may use `x` of type `xty`.
    fn with_x(&mut self, xty: Ty, ty: Ty, d: u32) -> Node {
        self.scoped(
            &["x".into()],
            vec![Var {
                name: "x".into(),
                ty: xty,
                from_with: false,
            }],
            |g| g.gen(ty, d),
        )
    }

    fn str_list(&mut self, d: u32) -> Node {
        let t = Ty::StrList;
        match self.rng.below(12) {
            0..=2 => {
                let n = self.rng.below(4);
                let mut parts: Vec<Node> = vec![text("[ ")];
                for _ in 0..n {
                    parts.push(self.gen(Ty::Str, d));
                    parts.push(text(" "));
                }
                parts.push(text("]"));
                Node::Expr(t, parts)
            }
            3 => {
                let a = self.gen(Ty::Attrs, d);
                expr!(t; "(builtins.attrNames ", a, ")")
            }
            4 => {
                let s = self.gen(Ty::Str, d);
                expr!(t; "(builtins.splitVersion ", s, ")")
            }
            5 => {
                let body = self.with_x(Ty::Int, Ty::Str, d);
                let l = self.gen(Ty::IntList, d);
                expr!(t; "(map (x: ", body, ") ", l, ")")
            }
            6 => {
                let l = self.gen(t, d);
                expr!(t; "(builtins.sort (p: q: p < q) ", l, ")")
            }
            7 => {
                let a = self.gen(t, d);
                let b = self.gen(t, d);
                expr!(t; "(", a, " ++ ", b, ")")
            }
            8 => {
                let body = self.with_x(Ty::Str, Ty::Bool, d);
                let l = self.gen(t, d);
                expr!(t; "(builtins.filter (x: ", body, ") ", l, ")")
            }
            _ => self.leaf(t),
        }
    }

    fn any_list(&mut self, d: u32) -> Node {
        let t = Ty::AnyList;
        match self.rng.below(8) {
            0..=3 => {
                let n = self.rng.below(4);
                let mut parts: Vec<Node> = vec![text("[ ")];
                for _ in 0..n {
                    parts.push(self.gen(Ty::Any, d));
                    parts.push(text(" "));
                }
                parts.push(text("]"));
                Node::Expr(t, parts)
            }
            4 => {
                let re = *self.rng.pick(&[
                    "\"a\"",
                    "\"(a)(b)?\"",
                    "\"[[:digit:]]+\"",
                    "\"\"",
                    "\"(x|y)*\"",
                ]);
                let s = self.gen(Ty::Str, d);
                expr!(t; format!("(builtins.split {re} "), s, ")")
            }
            5 => {
                let re = *self.rng.pick(&[
                    "\"(a)(b)?.*\"",
                    "\".*\"",
                    "\"([[:alpha:]]*)-?(.*)\"",
                    "\"a|(b)\"",
                    "\"[[:space:]]*([^ ]+).*\"",
                    "\"(.*)\\\\.(.*)\"",
                    "\"^(a+)$\"",
                    "\"([a-c]*)([0-9]{1,2})?.*\"",
                    "\"(h)(e)(l)(l)(o).*\"",
                ]);
                let s = self.gen(Ty::Str, d);
                expr!(t; format!("(let m = builtins.match {re} "), s, "; in if m == null then [ ] else m)")
            }
            6 => {
                let l = self.gen(Ty::IntList, d);
                expr!(t; "(builtins.attrValues (builtins.groupBy (x: toString (x / 2)) ", l, "))")
            }
            _ => self.leaf(t),
        }
    }

    fn attrs(&mut self, d: u32) -> Node {
        let t = Ty::Attrs;
        match self.rng.below(26) {
            0..=5 => self.attrs_literal(d, true).0,
            6 | 7 => {
                let a = self.gen(t, d);
                let b = self.gen(t, d);
                expr!(t; "(", a, " // ", b, ")")
            }
            8 => {
                let body = self.scoped(
                    &["x".into(), "n".into()],
                    vec![Var {
                        name: "n".into(),
                        ty: Ty::Str,
                        from_with: false,
                    }],
                    |g| g.gen(Ty::Any, d),
                );
                let a = self.gen(t, d);
                expr!(t; "(builtins.mapAttrs (n: x: ", body, ") ", a, ")")
            }
            9 => {
                let a = self.gen(t, d);
                let l = self.gen(Ty::StrList, d);
                expr!(t; "(builtins.removeAttrs ", a, " ", l, ")")
            }
            10 => {
                let n = self.rng.below(4);
                let mut parts: Vec<Node> = vec![text("(builtins.listToAttrs [ ")];
                for _ in 0..n {
                    parts.push(text("{ name = "));
                    parts.push(self.gen(Ty::Str, d.min(1)));
                    parts.push(text("; value = "));
                    parts.push(self.gen(Ty::Any, d));
                    parts.push(text("; } "));
                }
                parts.push(text("])"));
                Node::Expr(t, parts)
            }
            11 => {
                let a = self.gen(t, d);
                let b = self.gen(t, d);
                expr!(t; "(builtins.intersectAttrs ", a, " ", b, ")")
            }
            12 => {
                let l = self.gen(Ty::StrList, d);
                expr!(t; "(builtins.groupBy (x: x) ", l, ")")
            }
            13 => {
                let a = self.gen(t, d);
                let b = self.gen(t, d);
                expr!(t; "(builtins.zipAttrsWith (n: vs: vs) [ ", a, " ", b, " ])")
            }
            14 => {
                let a = self.gen(Ty::Any, d);
                expr!(t; "(builtins.tryEval ", a, ")")
            }
            15 => expr!(t; *self.rng.pick(&[
                "(builtins.functionArgs ({ a, b ? 1, ... }: a))",
                "(builtins.functionArgs (x: x))",
                "(builtins.functionArgs builtins.map)",
            ])),
            16 => {
                let s = self.gen(Ty::Str, d);
                expr!(t; "(builtins.parseDrvName ", s, ")")
            }
            17 => {
                let s = self.gen(Ty::Str, d);
                let field = *self.rng.pick(&["__toString = self: ", "outPath = "]);
                let v = self.gen(Ty::Int, d);
                expr!(t; format!("{{ {field}"), s, "; v = ", v, "; }")
            }
            18 => {
                let a = self.gen(t, d);
                expr!(t; "(builtins.fromJSON (builtins.toJSON ", a, "))")
            }
            19 => {
                let a = self.gen(Ty::Int, d);
                expr!(t; "(builtins.listToAttrs (map (x: { name = toString x; value = x; }) [ 3 1 ", a, " 1 ]))")
            }
            22 => {
                let v = self.gen(Ty::Any, d);
                expr!(t; "((args@{ a ? 1, ... }: args) { b = ", v, "; })")
            }
            23 => {
                let v = self.gen(Ty::Any, d);
                expr!(t; "(({ a ? 1, ... }@args: args // { inherit a; }) { b = ", v, "; })")
            }
            20 => {
                // `__overrides` in a rec set replaces attributes, also where they are used.
                let o = self.gen(Ty::Int, d);
                let a = self.gen(Ty::Int, d);
                let name = *self.rng.pick(&["a", "c"]);
                expr!(t; format!("(rec {{ __overrides = {{ {name} = "), o, "; }; a = ", a, "; b = a; })")
            }
            21 => expr!(t; *self.rng.pick(&[
                r#"(builtins.fromTOML "a = 1\nb = \"x\"\n[t]\nc = [1, 2]\n")"#,
                r#"(builtins.fromTOML "x.y = true\nf = 1.5\n")"#,
                r#"(builtins.fromJSON "{\"a\": [1, 2.5, null, true], \"b\": {}}")"#,
            ])),
            _ => self.leaf(t),
        }
    }
}
