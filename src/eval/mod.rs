//! Lazy evaluation of parsed recipes into values: Nix's semantics for
//! everything the dialect supports. Not for: rendering values (see `print`),
//! checking them against the bottle schema (see `schema`).
//!
//! Evaluation is a tree walk over the resolved AST. Every binding becomes a
//! thunk forced at most once; a thunk forced while it is being forced is an
//! "infinite recursion" error.
//!
//! Deep recursion: a call in tail position (the body of a function, a `let`,
//! an `if` branch) does not recurse in Rust: `eval` runs it in a loop (a
//! trampoline), so a tail-recursive function can make millions of calls in
//! constant Rust stack. Arguments that are arithmetic on values already known
//! are computed at once instead of suspended (`acc + 1` with `acc` a number),
//! so an accumulator does not grow into a chain of a million thunks. Walks
//! over values (`deepSeq`, printing, equality) and dropping them use explicit
//! work lists, not Rust recursion. What still nests in Rust (non-tail calls,
//! forcing one thunk inside another) is bounded by `MAX_DEPTH`, and all calls
//! in progress, tail calls included, by `MAX_CALLS`, so runaway recursion ends
//! in an error in bounded time and memory instead of a stack overflow (the CLI
//! runs evaluation on a thread with a large stack, see `run_with_stack`).

pub mod builtins;
pub mod error;
mod import;
pub mod io;
mod ops;
pub mod print;
pub mod value;

pub use error::{ErrorKind, EvalError, EvalResult};
pub use value::{Attr, Attrs, Context, Env, NixString, Thunk, Value};

use crate::syntax::ast::{
    self, Address, AttrKey, BinaryOp, Expr, ExprKind, Param, StrPart, UnaryOp,
};
use crate::syntax::{FileId, SourceMap, Span};
use io::{normalize, EvalIO, StdIO};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;
use value::{Closure, Suspended};

/// One function called many times over (a sort's comparator, a filter's
/// predicate, a fold's step) by `Evaluator::call_repeated`. When it is a
/// curried lambda taking exactly the arguments given (`a: b: …` with two),
/// each call's frames are the previous call's, refilled, unless that call
/// left something (a thunk, a closure) holding on to them.
pub struct Repeated {
    func: Value,
    /// The last call's frames, outermost first.
    frames: Vec<Rc<Env>>,
}

impl Repeated {
    pub fn new(func: Value) -> Repeated {
        Repeated {
            func,
            frames: Vec::new(),
        }
    }

    pub fn func(&self) -> &Value {
        &self.func
    }
}

/// The closure, and the lambda whose body `n` arguments reach, if the
/// function is `n` nested one-argument lambdas.
fn innermost(func: &Value, n: usize) -> Option<(&Closure, &Rc<ast::Lambda>)> {
    let Value::Lambda(closure) = func else {
        return None;
    };
    let mut lambda = &closure.lambda;
    for i in 0..n {
        if !matches!(lambda.param, Param::Ident(..)) {
            return None;
        }
        if i + 1 < n {
            let ExprKind::Lambda(inner) = &lambda.body.kind else {
                return None;
            };
            lambda = inner;
        }
    }
    (n > 0).then_some((closure, lambda))
}

/// Nested calls and thunk forcings deeper than this end in an error: what
/// nests in Rust's stack (calls in tail position do not).
pub const MAX_DEPTH: usize = 100_000;

/// Calls in progress at once, calls in tail position included, beyond which
/// evaluation ends in an error: a bound on time and memory for recursion that
/// never ends, far above what a finite program needs.
pub const MAX_CALLS: usize = 10_000_000;

/// Stack size for the evaluation thread: enough for `MAX_DEPTH` in debug builds.
pub const EVAL_STACK_BYTES: usize = 4 << 30;

/// Run `f` on a thread with a stack large enough for `MAX_DEPTH`; a panic
/// in `f` is re-raised here.
pub fn run_with_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let handle = std::thread::Builder::new()
        .name("eval".into())
        .stack_size(EVAL_STACK_BYTES)
        .spawn(f)
        .expect("eval: spawning the evaluation thread (is virtual memory exhausted?)");
    match handle.join() {
        Ok(v) => v,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

/// Where `<prefix/...>` search paths look.
#[derive(Clone, Debug)]
pub struct SearchPathEntry {
    /// `bottle` for `<bottle/...>`; empty to match any `<name/...>` under `dir`.
    pub prefix: String,
    pub dir: PathBuf,
}

pub struct Evaluator {
    pub sources: SourceMap,
    io: Box<dyn EvalIO>,
    search_path: Vec<SearchPathEntry>,
    /// Evaluated imports, by normalised path.
    files: HashMap<PathBuf, Thunk>,
    /// Files whose top-level expression is being evaluated, for cycle errors.
    importing: Vec<PathBuf>,
    globals: Rc<Env>,
    global_names: Vec<&'static str>,
    depth: usize,
    /// Calls in tail position in progress (each `eval` trampoline's count).
    tail_calls: usize,
    /// The vector `force_chain` lines a chain up in, kept between chains
    /// (a chain can be tens of thousands of links, forced again and again).
    chain: Vec<(Rc<value::LazyCell>, Suspended)>,
    /// Compiled regular expressions of `match` and `split`, by pattern.
    pub(crate) regex_cache: HashMap<String, regex::Regex>,
    /// Every derivation this evaluation made, by guest path: strings carry
    /// only the paths they mention (their context), and this maps a path
    /// back to its derivation. It lives and dies with the evaluation, so two
    /// evaluations (two tests, a long-lived tool) never see each other's.
    derivations: HashMap<String, Arc<crate::store::Derivation>>,
}

impl Default for Evaluator {
    fn default() -> Self {
        Evaluator::new(Vec::new())
    }
}

impl Evaluator {
    pub fn new(search_path: Vec<SearchPathEntry>) -> Evaluator {
        Evaluator::with_io(search_path, Box::new(StdIO))
    }

    pub fn with_io(search_path: Vec<SearchPathEntry>, io: Box<dyn EvalIO>) -> Evaluator {
        let (global_names, globals) = builtins::globals();
        Evaluator {
            sources: SourceMap::default(),
            io,
            search_path,
            files: HashMap::new(),
            importing: Vec::new(),
            globals,
            global_names,
            depth: 0,
            tail_calls: 0,
            chain: Vec::new(),
            regex_cache: HashMap::new(),
            derivations: HashMap::new(),
        }
    }

    /// Remember a derivation this evaluation made, so a string that mentions
    /// its path leads back to it ([`Evaluator::derivation_at`]). Content
    /// addressing keeps this consistent: one path, one derivation.
    pub fn remember_derivation(&mut self, drv: &Arc<crate::store::Derivation>) {
        self.derivations
            .entry(drv.guest_path())
            .or_insert_with(|| drv.clone());
    }

    /// The derivation whose output `path` names, if this evaluation made it.
    pub fn derivation_at(&self, path: &str) -> Option<Arc<crate::store::Derivation>> {
        self.derivations.get(path).cloned()
    }

    pub fn io(&self) -> &dyn EvalIO {
        &*self.io
    }

    /// Parse and resolve a source text into an expression.
    pub fn parse(
        &mut self,
        name: String,
        path: Option<PathBuf>,
        text: Arc<str>,
    ) -> EvalResult<(FileId, Rc<Expr>)> {
        let file = self.sources.add(name, path, text.clone());
        let expr = crate::syntax::parse(file, &text)?;
        crate::syntax::scope::resolve(&expr, &self.global_names)?;
        Ok((file, Rc::new(expr)))
    }

    /// Evaluate an expression given as text (`bottle eval -E`), relative to the
    /// current directory.
    pub fn eval_source(&mut self, name: &str, text: &str) -> EvalResult<Value> {
        let (_, expr) = self.parse(name.to_string(), None, text.into())?;
        let env = self.globals.clone();
        self.eval(&expr, &env)
    }

    /// Evaluate a file (`bottle eval FILE`), sharing the import cache.
    pub fn eval_file(&mut self, path: &Path) -> EvalResult<Value> {
        let abs = if path.is_absolute() {
            normalize(path)
        } else {
            normalize(
                &std::env::current_dir()
                    .unwrap_or_else(|_| PathBuf::from("/"))
                    .join(path),
            )
        };
        let span = Span::new(FileId(u32::MAX), 0, 0);
        self.import(&abs, span)
    }

    /// Like `nix-instantiate`: a function whose arguments all have defaults
    /// is called with them.
    pub fn auto_call(&mut self, v: Value) -> EvalResult<Value> {
        match &v {
            Value::Lambda(c) if matches!(c.lambda.param, Param::Formals { .. }) => {
                let span = c.lambda.span;
                self.apply(v.clone(), Thunk::Ready(Value::Attrs(Attrs::new())), span)
            }
            _ => Ok(v),
        }
    }

    /// Select `a.b.c` (the CLI's `-A`) from a value.
    pub fn select_path(&mut self, v: Value, path: &str) -> EvalResult<Value> {
        let mut v = v;
        let span = Span::new(FileId(u32::MAX), 0, 0);
        for name in path.split('.').filter(|n| !n.is_empty()) {
            let Value::Attrs(attrs) = &v else {
                return Err(EvalError::fatal(
                    format!(
                        "cannot select `{name}` from {} in attribute path `{path}`",
                        v.describe()
                    ),
                    span,
                ));
            };
            let Some(attr) = attrs.get(name) else {
                let help = crate::suggest::did_you_mean(name, attrs.names())
                    .unwrap_or_else(|| available(attrs));
                return Err(EvalError::fatal(
                    format!("attribute `{name}` in `-A {path}` does not exist"),
                    span,
                )
                .with_help(help));
            };
            let t = attr.value.clone();
            v = self.force(&t)?;
        }
        Ok(v)
    }

    // ── forcing ─────────────────────────────────────────────────────────────

    pub fn force(&mut self, thunk: &Thunk) -> EvalResult<Value> {
        let cell = match thunk {
            Thunk::Ready(v) => return Ok(v.clone()),
            Thunk::Lazy(cell) => cell,
        };
        if let Some(v) = cell.state.done() {
            return Ok(v);
        }
        let Some(pending) = cell.state.take_pending() else {
            return Err(EvalError::new(ErrorKind::InfiniteRecursion, cell.origin)
                .with_help("this value depends on itself; break the cycle"));
        };
        if let Some(first) = first_operand(&pending) {
            return self.force_chain(cell, pending, first);
        }
        // A depth error lands in `result` too, so the thunk is restored.
        let result = self.nested(cell.origin, |ev| ev.run_pending(&pending, cell.origin));
        cell.settle(pending, result)
    }

    /// Compute a thunk's pending state (an expression or an application).
    #[inline]
    fn run_pending(&mut self, pending: &Suspended, origin: Span) -> EvalResult<Value> {
        match pending {
            Suspended::Expr(expr, env) => self.eval(expr, env),
            Suspended::Apply(app) => self.apply_all(&app.func, &app.args, origin),
            _ => unreachable!("thunk: only pending states are taken for forcing"),
        }
    }

    /// Force a thunk whose operator needs another pending thunk first, and
    /// that one's, and so on (`acc + 1` where `acc` is the previous `acc + 1`,
    /// as a lazy accumulator builds): the chain is walked down in a loop and
    /// forced from its far end back, so its length costs heap, not Rust
    /// stack. Each link is evaluated as `force` would, once its operand is
    /// done; on an error every link left is restored to its pending state.
    #[inline(never)]
    fn force_chain(
        &mut self,
        cell: &Rc<value::LazyCell>,
        pending: Suspended,
        first: Rc<value::LazyCell>,
    ) -> EvalResult<Value> {
        // Marked as being forced (what a cycle runs into), outermost first.
        // (A chain forced inside this one finds `self.chain` taken and
        // starts its own vector.)
        let mut chain = std::mem::take(&mut self.chain);
        chain.push((cell.clone(), pending));
        let mut next = Some(first);
        while let Some(link) = next.take() {
            // As deep as the recursion that would force it link by link.
            if self.depth + chain.len() >= MAX_DEPTH {
                restore(chain);
                return Err(too_deep(link.origin));
            }
            let Some(pending) = link.state.take_pending() else {
                break;
            };
            next = first_operand(&pending);
            chain.push((link, pending));
        }
        let mut value = Value::Null;
        while let Some((link, pending)) = chain.pop() {
            let result = self.nested(link.origin, |ev| ev.run_pending(&pending, link.origin));
            match link.settle(pending, result) {
                Ok(v) => value = v,
                Err(e) => {
                    restore(chain);
                    return Err(e);
                }
            }
        }
        if chain.capacity() > self.chain.capacity() {
            self.chain = chain;
        }
        Ok(value)
    }

    /// Run `f` one level deeper (a call, a forcing, a nested value); past
    /// `MAX_DEPTH` fail with a clear error instead of overflowing the stack.
    pub(crate) fn nested<T>(
        &mut self,
        span: Span,
        f: impl FnOnce(&mut Self) -> EvalResult<T>,
    ) -> EvalResult<T> {
        self.enter(span)?;
        let r = f(self);
        self.depth -= 1;
        r
    }

    pub(crate) fn globals(&self) -> &Rc<Env> {
        &self.globals
    }

    fn enter(&mut self, span: Span) -> EvalResult<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            self.depth -= 1;
            return Err(too_deep(span));
        }
        Ok(())
    }

    /// Force a thunk and every value inside it (`deepSeq`, printing).
    pub fn force_deep(&mut self, thunk: &Thunk) -> EvalResult<Value> {
        let v = self.force(thunk)?;
        self.deep(&v)?;
        Ok(v)
    }

    /// Force every value inside `v`. A work list, not recursion: a structure
    /// may be nested a million levels deep. Like Nix, each list and set is
    /// visited once, so a value that contains itself is fine.
    pub fn deep(&mut self, v: &Value) -> EvalResult<()> {
        let mut todo: Vec<Thunk> = Vec::new();
        let mut seen: std::collections::HashSet<*const ()> = Default::default();
        let mut next = Some(v.clone());
        loop {
            match next.take() {
                Some(Value::List(items)) if seen.insert(Rc::as_ptr(&items).cast()) => {
                    todo.extend(items.iter().rev().cloned());
                }
                Some(Value::Attrs(attrs)) if seen.insert(attrs.as_ptr()) => {
                    todo.extend(attrs.iter().rev().map(|a| a.value.clone()));
                }
                _ => {}
            }
            match todo.pop() {
                Some(t) => next = Some(self.force(&t)?),
                None => return Ok(()),
            }
        }
    }

    // ── evaluation ──────────────────────────────────────────────────────────

    #[inline]
    pub fn eval(&mut self, expr: &Expr, env: &Rc<Env>) -> EvalResult<Value> {
        let mut tail = None;
        // Returned as it is when there is no tail call (no copy on the way).
        let result = self.eval_step(expr, env, &mut tail);
        match tail {
            None => result,
            Some(call) => self.run_tail_calls(call),
        }
    }

    /// The trampoline: run a call in tail position, and the one its body
    /// ends in, and so on. This one level of Rust stack stands for all of
    /// them.
    #[inline(never)]
    fn run_tail_calls(&mut self, first: TailCall) -> EvalResult<Value> {
        self.enter(first.span)?;
        let mut call = first;
        let mut calls = 0usize;
        let result = loop {
            calls += 1;
            self.tail_calls += 1;
            if self.tail_calls + self.depth > MAX_CALLS {
                break Err(too_many_calls(call.span));
            }
            let mut next = None;
            let result = self.eval_step(&call.lambda.body, &call.frame, &mut next);
            match next {
                None => break result,
                Some(next) => call = next,
            }
        };
        self.tail_calls -= calls;
        self.depth -= 1;
        result.map_err(|e| e.in_call(call.span, || "while calling a function".into()))
    }

    /// Evaluate `expr` up to its value, or up to a call in tail position: then
    /// that call is put in `tail` (and the value returned means nothing) for
    /// `eval`'s loop to run instead of recursing.
    ///
    /// Its frame is on the Rust stack once per level of nesting (`1 + f (n -
    /// 1)`), so the bulky cases (sets, selections, `?`, curried calls) are
    /// functions kept out of line: deep recursion then touches less stack.
    fn eval_step(
        &mut self,
        expr: &Expr,
        env: &Rc<Env>,
        tail: &mut Option<TailCall>,
    ) -> EvalResult<Value> {
        let mut expr = expr;
        // A frame made by a `let` or `with` in tail position; until then the
        // caller's frame is borrowed, not cloned.
        let mut own_frame: Option<Rc<Env>> = None;
        loop {
            let env = own_frame.as_ref().unwrap_or(env);
            let value = match &expr.kind {
                ExprKind::Int(n) => Ok(Value::Int(*n)),
                ExprKind::Float(f) => Ok(Value::Float(*f)),
                ExprKind::Str(parts) => self.string(parts, env),
                ExprKind::Path(p) => self.path_literal(p, expr.span),
                ExprKind::SearchPath(p) => {
                    self.search(p, expr.span).map(|p| Value::Path(Rc::new(p)))
                }
                ExprKind::Var(var) => self.variable(var, expr.span, env),
                ExprKind::List(items) => Ok(Value::list(
                    items.iter().map(|e| self.thunk(e, env, true)).collect(),
                )),
                ExprKind::Attrs(set) => self.attrset(set, env),
                ExprKind::Let(set, body) => {
                    let (frame, _) = self.bind(set, env)?;
                    own_frame = Some(frame);
                    expr = body;
                    continue;
                }
                ExprKind::Select {
                    target,
                    path,
                    default,
                } => self.select(target, path, default.as_deref(), env, expr.span),
                ExprKind::HasAttr { target, path } => self.has_attr(target, path, env),
                ExprKind::Apply { func, .. } if matches!(func.kind, ExprKind::Apply { .. }) => {
                    return self.application(expr, env, tail)
                }
                // `f x`, the commonest call, stays inline here: through
                // `application` it costs more instructions (callgrind).
                ExprKind::Apply { func, arg } => {
                    let f = self.eval(func, env)?;
                    let arg = self.thunk(arg, env, true);
                    if let Value::Lambda(closure) = &f {
                        let frame = self
                            .frame_for(&closure.lambda, &closure.env, arg, expr.span)
                            .map_err(|e| {
                                e.in_call(expr.span, || "while calling a function".into())
                            })?;
                        *tail = Some(TailCall {
                            lambda: closure.lambda.clone(),
                            frame,
                            span: expr.span,
                        });
                        return Ok(Value::Null);
                    }
                    self.apply(f, arg, expr.span)
                }
                ExprKind::Lambda(lambda) => Ok(Value::Lambda(Rc::new(Closure {
                    lambda: lambda.clone(),
                    env: env.clone(),
                }))),
                ExprKind::If {
                    cond,
                    then,
                    otherwise,
                } => {
                    let c = self.eval(cond, env)?;
                    let c = self.expect_bool(c, cond.span, "the condition of `if`")?;
                    expr = if c { then } else { otherwise };
                    continue;
                }
                ExprKind::Assert { cond, body } => {
                    let c = self.eval(cond, env)?;
                    if !self.expect_bool(c, cond.span, "an `assert` condition")? {
                        return Err(EvalError::new(ErrorKind::AssertionFailed, cond.span)
                            .with_help("this condition is false"));
                    }
                    expr = body;
                    continue;
                }
                ExprKind::With { scope, body } => {
                    let scope = self.thunk(scope, env, true);
                    own_frame = Some(Env::with_scope(scope, env));
                    expr = body;
                    continue;
                }
                ExprKind::Unary(op, operand) => {
                    let v = self.eval(operand, env)?;
                    match (op, v) {
                        (UnaryOp::Not, v) => {
                            Ok(Value::Bool(!self.expect_bool(v, operand.span, "`!`")?))
                        }
                        (UnaryOp::Negate, Value::Int(n)) => {
                            n.checked_neg().map(Value::Int).ok_or_else(|| {
                                EvalError::fatal("integer overflow in negation", expr.span)
                            })
                        }
                        // Nix negates by subtracting from zero, so `-0.0` is `0.0`.
                        (UnaryOp::Negate, Value::Float(f)) => Ok(Value::Float(0.0 - f)),
                        (UnaryOp::Negate, v) => {
                            Err(self.type_error("a number", &v, operand.span, None))
                        }
                    }
                }
                ExprKind::Binary(op, l, r) => self.binary(*op, l, r, env, expr.span),
            };
            return value;
        }
    }

    /// `f a b …`: the function, then each argument in turn; the last call is
    /// left in `tail`. A curried lambda (`a: b: …`) takes its arguments
    /// straight into its frames, without the closure values in between.
    #[inline(never)]
    fn application(
        &mut self,
        expr: &Expr,
        env: &Rc<Env>,
        tail: &mut Option<TailCall>,
    ) -> EvalResult<Value> {
        // The arguments, last first, each with the span of its call.
        let mut calls: smallvec::SmallVec<[(&Rc<Expr>, Span); 4]> = smallvec::SmallVec::new();
        let mut head = expr;
        while let ExprKind::Apply { func, arg } = &head.kind {
            calls.push((arg, head.span));
            head = func;
        }
        let in_call =
            |span: Span| move |e: EvalError| e.in_call(span, || "while calling a function".into());
        let mut callee = self.eval(head, env)?;
        while let Some((arg, span)) = calls.pop() {
            let arg = self.thunk(arg, env, true);
            let Value::Lambda(closure) = &callee else {
                callee = self.apply(callee, arg, span)?;
                continue;
            };
            let (mut lambda, mut frame) = (
                closure.lambda.clone(),
                self.frame_for(&closure.lambda, &closure.env, arg, span)
                    .map_err(in_call(span))?,
            );
            // Inner lambdas take the next arguments directly.
            let mut span = span;
            while let (ExprKind::Lambda(inner), Some(&(arg, next))) =
                (&lambda.body.kind, calls.last())
            {
                calls.pop();
                span = next;
                let arg = self.thunk(arg, env, true);
                frame = self
                    .frame_for(inner, &frame, arg, span)
                    .map_err(in_call(span))?;
                lambda = inner.clone();
            }
            if calls.is_empty() {
                *tail = Some(TailCall {
                    lambda,
                    frame,
                    span,
                });
                return Ok(Value::Null);
            }
            callee = self
                .nested(span, |ev| ev.eval(&lambda.body, &frame))
                .map_err(in_call(span))?;
        }
        Ok(callee)
    }

    /// A thunk for `expr` in `env`. Literals and references to finished frames
    /// need no suspension. `env_complete` is false while a `let`/`rec` frame is
    /// still being filled.
    fn thunk(&mut self, expr: &Rc<Expr>, env: &Rc<Env>, env_complete: bool) -> Thunk {
        match &expr.kind {
            ExprKind::Int(n) => Thunk::Ready(Value::Int(*n)),
            ExprKind::Float(f) => Thunk::Ready(Value::Float(*f)),
            ExprKind::Str(parts) if parts.iter().all(|p| matches!(p, StrPart::Literal(_))) => {
                let text: String = parts
                    .iter()
                    .map(|p| match p {
                        StrPart::Literal(s) => s.as_str(),
                        StrPart::Interpolation(_) => "",
                    })
                    .collect();
                Thunk::Ready(Value::string(text))
            }
            ExprKind::Var(var) => match var.address.get() {
                Address::Local { depth, index } if env_complete || depth > 0 => {
                    env.lookup(depth, index)
                }
                _ => Thunk::new(expr.clone(), env.clone()),
            },
            ExprKind::Lambda(lambda) => Thunk::Ready(Value::Lambda(Rc::new(Closure {
                lambda: lambda.clone(),
                env: env.clone(),
            }))),
            ExprKind::Binary(..) | ExprKind::Unary(..) => {
                match cheap(expr, env, env_complete, CHEAP_NESTING) {
                    Some(v) => Thunk::Ready(v),
                    None => Thunk::new(expr.clone(), env.clone()),
                }
            }
            _ => Thunk::new(expr.clone(), env.clone()),
        }
    }

    fn variable(&mut self, var: &ast::Var, span: Span, env: &Rc<Env>) -> EvalResult<Value> {
        match var.address.get() {
            Address::Local { depth, index } => {
                if let Some(v) = env.ready_value(depth, index) {
                    return Ok(v);
                }
                let t = env.lookup(depth, index);
                self.force(&t).map_err(|e| e.needed_at(span))
            }
            Address::With => {
                let mut frame = Some(env);
                let mut seen: Vec<String> = Vec::new();
                while let Some(e) = frame {
                    if let Some(scope) = &e.with {
                        let v = self.force(scope)?;
                        let Value::Attrs(attrs) = v else {
                            return Err(self.type_error(
                                "a set",
                                &v,
                                scope.origin().unwrap_or(span),
                                Some("`with`"),
                            ));
                        };
                        if let Some(attr) = attrs.get(&var.name) {
                            let t = attr.value.clone();
                            return self.force(&t);
                        }
                        seen.extend(attrs.names().map(String::from));
                    }
                    frame = e.parent.as_ref();
                }
                let help = crate::suggest::did_you_mean(&var.name, seen.iter().map(String::as_str));
                Err(
                    EvalError::fatal(format!("undefined variable `{}`", var.name), span)
                        .with_help_opt(help),
                )
            }
            Address::Unresolved => {
                unreachable!("scope: every variable is resolved before evaluation")
            }
        }
    }

    /// Create the frame of a `let` or `rec` set; returns it and the set's thunks.
    fn bind(&mut self, set: &ast::AttrSet, env: &Rc<Env>) -> EvalResult<(Rc<Env>, Vec<Thunk>)> {
        let frame = Env::frame(value::Slots::with_capacity(set.statics.len()), env);
        let thunks: value::Slots = set
            .statics
            .iter()
            .map(|a| {
                if a.inherited {
                    self.thunk(&a.value, env, true)
                } else {
                    self.thunk(&a.value, &frame, false)
                }
            })
            .collect();
        *frame.slots.borrow_mut() = thunks.clone();
        Ok((frame, thunks.into_vec()))
    }

    #[inline(never)]
    fn attrset(&mut self, set: &ast::AttrSet, env: &Rc<Env>) -> EvalResult<Value> {
        let (scope, thunks) = if set.recursive {
            self.bind(set, env)?
        } else {
            let thunks = set
                .statics
                .iter()
                .map(|a| self.thunk(&a.value, env, true))
                .collect();
            (env.clone(), thunks)
        };
        let mut entries: Vec<Attr> = set
            .statics
            .iter()
            .zip(thunks)
            .map(|(a, value)| Attr {
                name: a.name.clone(),
                value,
                span: Some(a.span),
            })
            .collect();
        if set.recursive {
            self.apply_overrides(&mut entries, &scope)?;
        }
        if set.dynamics.is_empty() {
            return Ok(Value::Attrs(Attrs::from_unsorted(entries)));
        }
        for d in &set.dynamics {
            let key = self.eval(&d.key, &scope)?;
            let name = match key {
                Value::Null => continue,
                Value::String(s) => s.text,
                other => {
                    return Err(self.type_error(
                        "a string",
                        &other,
                        d.key.span,
                        Some("a dynamic attribute name"),
                    ))
                }
            };
            if entries.iter().any(|a| a.name == name) {
                return Err(EvalError::fatal(
                    format!("dynamic attribute `{name}` is already defined"),
                    d.key.span,
                ));
            }
            let value = self.thunk(&d.value, &scope, true);
            entries.push(Attr {
                name,
                value,
                span: Some(d.key.span),
            });
        }
        Ok(Value::Attrs(Attrs::from_unsorted(entries)))
    }

    /// Nix's `__overrides` in a `rec` set: its attributes replace (or add to) the
    /// set's own, also for the other attributes that refer to them.
    fn apply_overrides(&mut self, entries: &mut Vec<Attr>, frame: &Rc<Env>) -> EvalResult<()> {
        let Some(at) = entries.iter().position(|a| &*a.name == "__overrides") else {
            return Ok(());
        };
        let t = entries[at].value.clone();
        let span = entries[at].span.unwrap_or(DUMMY);
        let overrides = self.force_attrs(&t, span)?;
        let statics = entries.len();
        for o in overrides.iter() {
            match entries[..statics].iter().position(|a| a.name == o.name) {
                Some(i) => {
                    entries[i].value = o.value.clone();
                    frame.slots.borrow_mut()[i] = o.value.clone();
                }
                None => entries.push(o.clone()),
            }
        }
        Ok(())
    }

    fn key_name(&mut self, key: &AttrKey, env: &Rc<Env>) -> EvalResult<Rc<str>> {
        match key {
            AttrKey::Static(name, _) => Ok(name.clone()),
            AttrKey::Dynamic(e) => {
                let v = self.eval(e, env)?;
                match v {
                    Value::String(s) => Ok(s.text),
                    other => {
                        Err(self.type_error("a string", &other, e.span, Some("an attribute name")))
                    }
                }
            }
        }
    }

    #[inline(never)]
    fn select(
        &mut self,
        target: &Expr,
        path: &[AttrKey],
        default: Option<&Expr>,
        env: &Rc<Env>,
        span: Span,
    ) -> EvalResult<Value> {
        // `x.name` with both computed (a comparator reading its arguments):
        // no thunk or set is cloned on the way, only the attribute's value.
        if let (ExprKind::Var(var), [AttrKey::Static(name, _)]) = (&target.kind, path) {
            if let Address::Local { depth, index } = var.address.get() {
                if let Some(v) = env.ready_attr(depth, index, name) {
                    return Ok(v);
                }
            }
        }
        let mut v = self.eval(target, env)?;
        for key in path {
            let name = self.key_name(key, env)?;
            let attrs = match v {
                Value::Attrs(a) => a,
                other => {
                    if let Some(d) = default {
                        return self.eval(d, env);
                    }
                    return Err(EvalError::fatal(
                        format!(
                            "cannot select attribute `{name}`: the value is {}, not a set",
                            other.describe()
                        ),
                        key.span(),
                    )
                    .with_label(span, "in this selection"));
                }
            };
            match attrs.get(&name) {
                Some(attr) => {
                    v = self.force(&attr.value)?;
                }
                None => {
                    if let Some(d) = default {
                        return self.eval(d, env);
                    }
                    let help = crate::suggest::did_you_mean(&name, attrs.names());
                    return Err(EvalError::fatal(
                        format!("attribute `{name}` missing"),
                        key.span(),
                    )
                    .with_help_opt(help.or_else(|| Some(available(&attrs)))));
                }
            }
        }
        Ok(v)
    }

    #[inline(never)]
    fn has_attr(&mut self, target: &Expr, path: &[AttrKey], env: &Rc<Env>) -> EvalResult<Value> {
        let mut v = self.eval(target, env)?;
        for (i, key) in path.iter().enumerate() {
            let Value::Attrs(attrs) = v else {
                return Ok(Value::Bool(false));
            };
            let name = self.key_name(key, env)?;
            match attrs.get(&name) {
                // The last attribute's value is not forced: `{ a = throw ""; } ? a` is true.
                Some(_) if i + 1 == path.len() => return Ok(Value::Bool(true)),
                Some(attr) => {
                    v = self.force(&attr.value)?;
                }
                None => return Ok(Value::Bool(false)),
            }
        }
        Ok(Value::Bool(true))
    }

    // ── application ─────────────────────────────────────────────────────────

    pub fn apply(&mut self, func: Value, arg: Thunk, span: Span) -> EvalResult<Value> {
        match func {
            Value::Lambda(closure) => self.call_lambda(&closure.lambda, &closure.env, arg, span),
            Value::Builtin(app) => {
                let args: smallvec::SmallVec<[Thunk; 3]> = app
                    .args
                    .iter()
                    .cloned()
                    .chain(std::iter::once(arg))
                    .collect();
                if args.len() < app.builtin.arity {
                    return Ok(Value::Builtin(Rc::new(value::BuiltinApp {
                        builtin: app.builtin,
                        args: args.into_vec(),
                    })));
                }
                let r = self.nested(span, |ev| (app.builtin.run)(ev, &args, span));
                r.map_err(|e| {
                    e.in_call(span, || {
                        format!("while calling `builtins.{}`", app.builtin.name)
                    })
                })
            }
            Value::Attrs(attrs) if attrs.get("__functor").is_some() => {
                let functor = attrs.get("__functor").expect("checked above").value.clone();
                let f = self.force(&functor)?;
                let f = self.apply(f, Thunk::Ready(Value::Attrs(attrs.clone())), span)?;
                self.apply(f, arg, span)
            }
            other => Err(EvalError::fatal(
                format!(
                    "attempt to call something which is not a function but {}",
                    other.describe()
                ),
                span,
            )),
        }
    }

    pub fn apply_all(&mut self, func: &Value, args: &[Thunk], span: Span) -> EvalResult<Value> {
        let mut rest = args;
        let mut partial = None;
        // `a: b: …` applied to its arguments: bind each into its frame and go
        // straight to the inner lambda, without the closure values in between
        // (or any reference counting of the function: what a comparator costs).
        if let Value::Lambda(closure) = func {
            let mut lambda = &closure.lambda;
            let mut frame: Option<Rc<Env>> = None;
            while let (Param::Ident(..), ExprKind::Lambda(inner), [first, tail @ ..]) =
                (&lambda.param, &lambda.body.kind, rest)
            {
                if tail.is_empty() {
                    break;
                }
                let parent = frame.as_ref().unwrap_or(&closure.env);
                frame = Some(Env::frame(smallvec::smallvec![first.clone()], parent));
                lambda = inner;
                rest = tail;
            }
            let env = frame.as_ref().unwrap_or(&closure.env);
            if let [last] = rest {
                return self.call_lambda(lambda, env, last.clone(), span);
            }
            if let Some(env) = frame {
                partial = Some(Value::Lambda(Rc::new(Closure {
                    lambda: lambda.clone(),
                    env,
                })));
            }
        }
        let mut f = partial.unwrap_or_else(|| func.clone());
        for a in rest {
            f = self.apply(f, a.clone(), span)?;
        }
        Ok(f)
    }

    /// Call `call`'s function with `args`, as `apply_all` would; for a
    /// curried lambda taking exactly these arguments, in the frames of the
    /// previous call when nothing kept them (see `Repeated`).
    pub fn call_repeated(
        &mut self,
        call: &mut Repeated,
        args: &[Thunk],
        span: Span,
    ) -> EvalResult<Value> {
        let Some((closure, lambda)) = innermost(&call.func, args.len()) else {
            return self.apply_all(&call.func, args, span);
        };
        // Only `call` holds each frame (and each frame its parent, the one
        // before): the last call kept nothing, so its frames take these arguments.
        let last = args.len().saturating_sub(1);
        let free = call.frames.len() == args.len()
            && call
                .frames
                .iter()
                .enumerate()
                .all(|(i, f)| Rc::strong_count(f) == if i == last { 1 } else { 2 });
        if free {
            for (frame, arg) in call.frames.iter().zip(args) {
                frame.slots.borrow_mut()[0] = arg.clone();
            }
        } else {
            call.frames.clear();
            for arg in args {
                let parent = call.frames.last().unwrap_or(&closure.env);
                let frame = Env::frame(smallvec::smallvec![arg.clone()], parent);
                call.frames.push(frame);
            }
        }
        let frame = call.frames.last().expect("one frame per argument");
        self.nested(span, |ev| ev.eval(&lambda.body, frame))
            .map_err(|e| e.in_call(span, || "while calling a function".into()))
    }

    /// Apply a function to already-computed values.
    pub fn call_with(&mut self, func: &Value, args: Vec<Value>, span: Span) -> EvalResult<Value> {
        let thunks: Vec<Thunk> = args.into_iter().map(Thunk::Ready).collect();
        self.apply_all(func, &thunks, span)
    }

    fn call_lambda(
        &mut self,
        lambda: &ast::Lambda,
        env: &Rc<Env>,
        arg: Thunk,
        span: Span,
    ) -> EvalResult<Value> {
        let r = self.nested(span, |ev| ev.call(lambda, env, arg, span));
        r.map_err(|e| e.in_call(span, || "while calling a function".into()))
    }

    fn call(
        &mut self,
        lambda: &ast::Lambda,
        closure_env: &Rc<Env>,
        arg: Thunk,
        span: Span,
    ) -> EvalResult<Value> {
        let frame = self.frame_for(lambda, closure_env, arg, span)?;
        self.eval(&lambda.body, &frame)
    }

    /// The frame a call of `lambda` evaluates its body in: the argument, or
    /// the formals taken from the argument set.
    fn frame_for(
        &mut self,
        lambda: &ast::Lambda,
        closure_env: &Rc<Env>,
        arg: Thunk,
        span: Span,
    ) -> EvalResult<Rc<Env>> {
        Ok(match &lambda.param {
            Param::Ident(..) => Env::frame(smallvec::smallvec![arg], closure_env),
            Param::Formals {
                formals,
                ellipsis,
                bind,
            } => {
                let v = self.force(&arg)?;
                let Value::Attrs(attrs) = v else {
                    return Err(self
                        .type_error(
                            "a set",
                            &v,
                            arg.origin().unwrap_or(span),
                            Some("the argument of this function"),
                        )
                        .with_label(lambda.span, "this function takes a set"));
                };
                if !ellipsis {
                    if let Some(extra) = attrs
                        .names()
                        .find(|n| !formals.iter().any(|f| &*f.name == *n))
                    {
                        let help =
                            crate::suggest::did_you_mean(extra, formals.iter().map(|f| &*f.name));
                        return Err(EvalError::fatal(
                            format!("function called with unexpected argument `{extra}`"),
                            span,
                        )
                        .with_label(lambda.span, "the function is defined here")
                        .with_help_opt(
                            help.or_else(|| Some(format!("it accepts {}", formal_list(formals)))),
                        ));
                    }
                }
                let frame = Env::frame(value::Slots::new(), closure_env);
                let mut slots = value::Slots::with_capacity(formals.len() + 1);
                for f in formals {
                    match (attrs.get(&f.name), &f.default) {
                        (Some(a), _) => slots.push(a.value.clone()),
                        (None, Some(d)) => slots.push(self.thunk(d, &frame, false)),
                        (None, None) => {
                            return Err(EvalError::fatal(
                                format!("function called without required argument `{}`", f.name),
                                span,
                            )
                            .with_label(f.span, "required here"))
                        }
                    }
                }
                if bind.is_some() {
                    slots.push(Thunk::Ready(Value::Attrs(attrs)));
                }
                *frame.slots.borrow_mut() = slots;
                frame
            }
        })
    }

    // ── operators ───────────────────────────────────────────────────────────

    fn binary(
        &mut self,
        op: BinaryOp,
        l: &Expr,
        r: &Expr,
        env: &Rc<Env>,
        span: Span,
    ) -> EvalResult<Value> {
        use BinaryOp::*;
        let context = match op {
            And => "`&&`",
            Or => "`||`",
            _ => "`->`",
        };
        match op {
            Concat => self.concat_chain(l, r, env),
            And | Or | Implies => {
                let lv = self.operand(l, env)?;
                let lb = self.expect_bool(lv, l.span, context)?;
                let short = match op {
                    And => (!lb).then_some(false),
                    Or => lb.then_some(true),
                    _ => (!lb).then_some(true),
                };
                if let Some(b) = short {
                    return Ok(Value::Bool(b));
                }
                let rv = self.operand(r, env)?;
                Ok(Value::Bool(self.expect_bool(rv, r.span, context)?))
            }
            // Nix reads `a <= b` as `!(b < a)` and `a > b` as `b < a`: the right side
            // is evaluated first (which matters when both fail).
            Le | Gt => {
                let rv = self.operand(r, env)?;
                let lv = self.operand(l, env)?;
                self.operate(op, lv, rv, l.span, r.span, span)
            }
            _ => {
                let mut lv = self.operand(l, env)?;
                // Anything but a number or a path on the left of `+` starts a string
                // concatenation, and Nix coerces it to a string before it evaluates
                // the right side: a set may turn into one, the rest is an error now.
                if op == Add {
                    match &lv {
                        Value::Attrs(_) => {
                            lv = Value::String(self.coerce_to_string(&lv, l.span, false)?)
                        }
                        Value::List(_)
                        | Value::Null
                        | Value::Bool(_)
                        | Value::Lambda(_)
                        | Value::Builtin(_) => {
                            return Err(self.type_error("a number", &lv, l.span, Some("`+`")))
                        }
                        _ => {}
                    }
                }
                let rv = self.operand(r, env)?;
                self.operate(op, lv, rv, l.span, r.span, span)
            }
        }
    }

    /// An operator's operand: a variable or a number without the frame of
    /// `eval` (which matters for recursion such as `1 + f (n - 1)`, whose
    /// depth is in Rust's stack).
    #[inline]
    fn operand(&mut self, e: &Expr, env: &Rc<Env>) -> EvalResult<Value> {
        match &e.kind {
            ExprKind::Int(n) => Ok(Value::Int(*n)),
            ExprKind::Var(var) => self.variable(var, e.span, env),
            _ => self.eval(e, env),
        }
    }

    /// `a ++ b ++ c …` (right-nested) in one pass: long chains stay linear
    /// instead of copying the growing tail at every step.
    fn concat_chain(&mut self, l: &Expr, r: &Expr, env: &Rc<Env>) -> EvalResult<Value> {
        let mut operands = vec![l];
        let mut rest = r;
        while let ExprKind::Binary(BinaryOp::Concat, l2, r2) = &rest.kind {
            operands.push(l2);
            rest = r2;
        }
        operands.push(rest);
        let mut lists = Vec::with_capacity(operands.len());
        for e in operands {
            match self.eval(e, env)? {
                Value::List(items) => lists.push(items),
                other => return Err(self.type_error("a list", &other, e.span, Some("`++`"))),
            }
        }
        if lists.len() == 2 && lists[1].is_empty() {
            return Ok(Value::List(lists.swap_remove(0)));
        }
        let mut out = Vec::with_capacity(lists.iter().map(|l| l.len()).sum());
        for l in &lists {
            out.extend(l.iter().cloned());
        }
        Ok(Value::list(out))
    }

    /// A strict binary operator on two values (also used by builtins.add etc.).
    pub fn operate(
        &mut self,
        op: BinaryOp,
        lv: Value,
        rv: Value,
        ls: Span,
        rs: Span,
        span: Span,
    ) -> EvalResult<Value> {
        use BinaryOp::*;
        match op {
            Eq => Ok(Value::Bool(self.equal(&lv, &rv)?)),
            Ne => Ok(Value::Bool(!self.equal(&lv, &rv)?)),
            Lt => Ok(Value::Bool(self.less_than(&lv, &rv, span)?)),
            Gt => Ok(Value::Bool(self.less_than(&rv, &lv, span)?)),
            Le => Ok(Value::Bool(!self.less_than(&rv, &lv, span)?)),
            Ge => Ok(Value::Bool(!self.less_than(&lv, &rv, span)?)),
            Concat => match (lv, rv) {
                (Value::List(a), Value::List(b)) => {
                    if b.is_empty() {
                        return Ok(Value::List(a));
                    }
                    if a.is_empty() {
                        return Ok(Value::List(b));
                    }
                    let mut out = Vec::with_capacity(a.len() + b.len());
                    out.extend(a.iter().cloned());
                    out.extend(b.iter().cloned());
                    Ok(Value::list(out))
                }
                (Value::List(_), other) => Err(self.type_error("a list", &other, rs, Some("`++`"))),
                (other, _) => Err(self.type_error("a list", &other, ls, Some("`++`"))),
            },
            Update => match (lv, rv) {
                (Value::Attrs(a), Value::Attrs(b)) => Ok(Value::Attrs(a.update(&b))),
                (Value::Attrs(_), other) => Err(self.type_error("a set", &other, rs, Some("`//`"))),
                (other, _) => Err(self.type_error("a set", &other, ls, Some("`//`"))),
            },
            Add => match (lv, rv) {
                (Value::String(a), b) => {
                    let b = self.coerce_to_string(&b, rs, false)?;
                    let mut ctx = a.context.clone();
                    ctx.extend(&b.context);
                    let mut s = String::with_capacity(a.text.len() + b.text.len());
                    s.push_str(&a.text);
                    s.push_str(&b.text);
                    Ok(Value::String(NixString::with_context(s, ctx)))
                }
                (Value::Path(p), b) => {
                    let b = self.coerce_to_string(&b, rs, false)?;
                    if !b.context.is_empty() {
                        return Err(EvalError::fatal(
                            "a string that refers to a derivation cannot be appended to a path",
                            rs,
                        ));
                    }
                    let joined = format!("{}{}", p.display(), b.text);
                    Ok(Value::Path(Rc::new(normalize(Path::new(&joined)))))
                }
                // Like Nix: a set (`__toString`, `outPath`) on the left makes a string.
                (a @ Value::Attrs(_), b) => {
                    let a = self.coerce_to_string(&a, ls, false)?;
                    self.operate(op, Value::String(a), b, ls, rs, span)
                }
                (a, b) => self.arith(op, a, b, ls, rs, span),
            },
            Sub | Mul | Div => self.arith(op, lv, rv, ls, rs, span),
            And | Or | Implies => {
                unreachable!("eval: short-circuit operators are handled in `binary`")
            }
        }
    }

    fn arith(
        &mut self,
        op: BinaryOp,
        a: Value,
        b: Value,
        ls: Span,
        rs: Span,
        span: Span,
    ) -> EvalResult<Value> {
        use BinaryOp::*;
        let overflow = || EvalError::fatal(format!("integer overflow in `{}`", op.symbol()), span);
        match (a, b) {
            (Value::Int(x), Value::Int(y)) => match op {
                Add => x.checked_add(y).map(Value::Int).ok_or_else(overflow),
                Sub => x.checked_sub(y).map(Value::Int).ok_or_else(overflow),
                Mul => x.checked_mul(y).map(Value::Int).ok_or_else(overflow),
                _ => {
                    if y == 0 {
                        return Err(EvalError::fatal("division by zero", rs));
                    }
                    x.checked_div(y).map(Value::Int).ok_or_else(overflow)
                }
            },
            (a @ (Value::Int(_) | Value::Float(_)), b @ (Value::Int(_) | Value::Float(_))) => {
                let (x, y) = (as_float(&a), as_float(&b));
                Ok(Value::Float(match op {
                    Add => x + y,
                    Sub => x - y,
                    Mul => x * y,
                    _ => {
                        if y == 0.0 {
                            return Err(EvalError::fatal("division by zero", rs));
                        }
                        x / y
                    }
                }))
            }
            (a, b) => {
                let bad = if matches!(a, Value::Int(_) | Value::Float(_)) {
                    (b, rs)
                } else {
                    (a, ls)
                };
                Err(self.type_error(
                    "a number",
                    &bad.0,
                    bad.1,
                    Some(&format!("`{}`", op.symbol())),
                ))
            }
        }
    }
}

/// Put back the pending states of a chain's links not forced yet.
fn restore(chain: Vec<(Rc<value::LazyCell>, Suspended)>) {
    for (link, pending) in chain.into_iter().rev() {
        link.state.replace(pending);
    }
}

/// The pending thunk a suspended operator forces before anything else: a
/// variable as its first-evaluated operand (the left one, but the right one
/// of `<=` and `>`, which Nix evaluates first). Forcing it first changes
/// nothing but where the stack is spent (`Evaluator::force_chain`).
fn first_operand(pending: &Suspended) -> Option<Rc<value::LazyCell>> {
    let Suspended::Expr(expr, env) = pending else {
        return None;
    };
    let ExprKind::Binary(op, l, r) = &expr.kind else {
        return None;
    };
    let first = match op {
        BinaryOp::Le | BinaryOp::Gt => r,
        _ => l,
    };
    let ExprKind::Var(var) = &first.kind else {
        return None;
    };
    let Address::Local { depth, index } = var.address.get() else {
        return None;
    };
    match env.lookup(depth, index) {
        Thunk::Lazy(cell) => Some(cell),
        Thunk::Ready(_) => None,
    }
}

/// How deeply nested an operator expression `cheap` computes at once.
const CHEAP_NESTING: u32 = 3;

/// The value of `expr` if it is arithmetic, a comparison or a negation on
/// numbers and Booleans that are already computed, and it succeeds; `None`
/// otherwise (then it is suspended as usual). Computing such an expression
/// now instead of when it is needed cannot be told apart: it has no effects,
/// always ends quickly, and only a success is kept (an overflow or a division
/// by zero stays a suspended error). It keeps accumulators such as
/// `loop (n - 1) (acc + 1)` numbers instead of chains of thunks as long as the
/// loop, and saves allocating a thunk per argument.
fn cheap(expr: &Expr, env: &Rc<Env>, env_complete: bool, budget: u32) -> Option<Value> {
    Some(match cheap_scalar(expr, env, env_complete, budget)? {
        Scalar::Int(n) => Value::Int(n),
        Scalar::Float(f) => Value::Float(f),
        Scalar::Bool(b) => Value::Bool(b),
    })
}

/// What `cheap` computes with: small enough to travel in registers.
#[derive(Clone, Copy)]
enum Scalar {
    Int(i64),
    Float(f64),
    Bool(bool),
}

fn cheap_scalar(expr: &Expr, env: &Rc<Env>, env_complete: bool, budget: u32) -> Option<Scalar> {
    use BinaryOp::*;
    use Scalar::{Bool, Float, Int};
    match &expr.kind {
        ExprKind::Int(n) => Some(Int(*n)),
        ExprKind::Float(f) => Some(Float(*f)),
        ExprKind::Var(var) => match var.address.get() {
            Address::Local { depth, index } if env_complete || depth > 0 => {
                env.peek_scalar(depth, index, |v| match v {
                    Value::Int(n) => Some(Int(*n)),
                    Value::Float(f) => Some(Float(*f)),
                    Value::Bool(b) => Some(Bool(*b)),
                    _ => None,
                })
            }
            _ => None,
        },
        ExprKind::Unary(op, operand) if budget > 0 => {
            match (op, cheap_scalar(operand, env, env_complete, budget - 1)?) {
                (UnaryOp::Not, Bool(b)) => Some(Bool(!b)),
                (UnaryOp::Negate, Int(n)) => n.checked_neg().map(Int),
                (UnaryOp::Negate, Float(f)) => Some(Float(0.0 - f)),
                _ => None,
            }
        }
        ExprKind::Binary(op @ (Add | Sub | Mul | Div | Lt | Gt | Le | Ge | Eq | Ne), l, r)
            if budget > 0 =>
        {
            let a = cheap_scalar(l, env, env_complete, budget - 1)?;
            let b = cheap_scalar(r, env, env_complete, budget - 1)?;
            match (a, b) {
                (Int(x), Int(y)) => match op {
                    Add => x.checked_add(y).map(Int),
                    Sub => x.checked_sub(y).map(Int),
                    Mul => x.checked_mul(y).map(Int),
                    Div => x.checked_div(y).map(Int),
                    Lt => Some(Bool(x < y)),
                    Gt => Some(Bool(x > y)),
                    Le => Some(Bool(x <= y)),
                    Ge => Some(Bool(x >= y)),
                    Eq => Some(Bool(x == y)),
                    _ => Some(Bool(x != y)),
                },
                (Bool(x), Bool(y)) => match op {
                    Eq => Some(Bool(x == y)),
                    Ne => Some(Bool(x != y)),
                    _ => None,
                },
                (Bool(_), _) | (_, Bool(_)) => None,
                (a, b) => {
                    let as_f = |s| match s {
                        Int(n) => n as f64,
                        Float(f) => f,
                        Bool(_) => unreachable!("eval: Booleans are ruled out above"),
                    };
                    let (x, y) = (as_f(a), as_f(b));
                    match op {
                        Add => Some(Float(x + y)),
                        Sub => Some(Float(x - y)),
                        Mul => Some(Float(x * y)),
                        Div if y != 0.0 => Some(Float(x / y)),
                        Div => None,
                        // As `compare` does: NaN compares as equal for ordering.
                        Lt | Gt | Le | Ge => {
                            let ord = x.partial_cmp(&y).unwrap_or(std::cmp::Ordering::Equal);
                            Some(Bool(match op {
                                Lt => ord.is_lt(),
                                Gt => ord.is_gt(),
                                Le => !ord.is_gt(),
                                _ => !ord.is_lt(),
                            }))
                        }
                        Eq => Some(Bool(x == y)),
                        _ => Some(Bool(x != y)),
                    }
                }
            }
        }
        _ => None,
    }
}

/// A call in tail position, for `Evaluator::eval`'s loop to run.
struct TailCall {
    lambda: Rc<ast::Lambda>,
    frame: Rc<Env>,
    span: Span,
}

fn too_deep(span: Span) -> EvalError {
    EvalError::fatal("stack overflow: evaluation nested too deeply", span).with_help(format!(
        "more than {MAX_DEPTH} nested calls; this is usually recursion without a base case"
    ))
}

fn too_many_calls(span: Span) -> EvalError {
    EvalError::fatal("stack overflow: too many calls in progress", span).with_help(format!(
        "more than {MAX_CALLS} calls at once; this is usually recursion without a base case"
    ))
}

fn as_float(v: &Value) -> f64 {
    match v {
        Value::Int(n) => *n as f64,
        Value::Float(f) => *f,
        _ => unreachable!("eval: only numbers reach float arithmetic"),
    }
}

/// The span of values no recipe text wrote.
const DUMMY: Span = Span {
    file: FileId(u32::MAX),
    start: 0,
    end: 0,
};

fn available(attrs: &Attrs) -> String {
    let names: Vec<&str> = attrs.names().take(8).collect();
    if names.is_empty() {
        return "the set is empty".into();
    }
    let more = if attrs.len() > 8 { ", …" } else { "" };
    format!(
        "the set has {}{more}",
        names
            .iter()
            .map(|n| format!("`{n}`"))
            .collect::<Vec<_>>()
            .join(", ")
    )
}

fn formal_list(formals: &[ast::Formal]) -> String {
    if formals.is_empty() {
        return "no attributes".into();
    }
    formals
        .iter()
        .map(|f| format!("`{}`", f.name))
        .collect::<Vec<_>>()
        .join(", ")
}
