//! Runtime values, thunks and environments.
//!
//! A `Thunk` is a value or a suspended computation that is forced at most
//! once. Attribute sets keep their attributes sorted by name and remember the
//! span that defined each one, so later stages (the schema checker) can point
//! at the recipe text that produced a bad value. Strings carry a context: the
//! derivations they mention, so interpolating a derivation records a dependency.

use super::EvalResult;
use crate::syntax::ast::{Expr, Lambda, Name};
use crate::syntax::Span;
use std::cell::{Cell, RefCell};
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::rc::Rc;

#[derive(Clone, Debug)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    String(NixString),
    /// An absolute, normalised path.
    Path(Rc<PathBuf>),
    List(Rc<[Thunk]>),
    Attrs(Attrs),
    Lambda(Rc<Closure>),
    Builtin(Rc<BuiltinApp>),
}

impl Value {
    /// Nix's name for the type, as `builtins.typeOf` reports it.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float",
            Value::String(_) => "string",
            Value::Path(_) => "path",
            Value::List(_) => "list",
            Value::Attrs(_) => "set",
            Value::Lambda(_) | Value::Builtin(_) => "lambda",
        }
    }

    /// The type in words, for error messages.
    pub fn describe(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "a Boolean",
            Value::Int(_) => "an integer",
            Value::Float(_) => "a float",
            Value::String(_) => "a string",
            Value::Path(_) => "a path",
            Value::List(_) => "a list",
            Value::Attrs(_) => "a set",
            Value::Lambda(_) | Value::Builtin(_) => "a function",
        }
    }

    pub fn string(s: impl Into<Rc<str>>) -> Value {
        Value::String(NixString::plain(s))
    }

    pub fn list(items: Vec<Thunk>) -> Value {
        Value::List(items.into())
    }

    pub fn is_function(&self) -> bool {
        matches!(self, Value::Lambda(_) | Value::Builtin(_))
    }
}

/// A string and the derivations it mentions.
#[derive(Clone, Debug)]
pub struct NixString {
    pub text: Rc<str>,
    pub context: Context,
}

impl NixString {
    pub fn plain(text: impl Into<Rc<str>>) -> NixString {
        NixString {
            text: text.into(),
            context: Context::default(),
        }
    }

    pub fn with_context(text: impl Into<Rc<str>>, context: Context) -> NixString {
        NixString {
            text: text.into(),
            context,
        }
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }
}

/// The derivations a string mentions, by store path. Empty for almost every
/// string, so it costs one null pointer until something is recorded.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Context(Option<Rc<BTreeSet<Rc<str>>>>);

impl Context {
    pub fn single(path: Rc<str>) -> Context {
        Context(Some(Rc::new(BTreeSet::from([path]))))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_none()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Rc<str>> {
        self.0.iter().flat_map(|s| s.iter())
    }

    /// Add everything `other` mentions.
    pub fn extend(&mut self, other: &Context) {
        let Some(theirs) = &other.0 else { return };
        match &mut self.0 {
            None => self.0 = Some(theirs.clone()),
            Some(mine) => {
                if !Rc::ptr_eq(mine, theirs) {
                    Rc::make_mut(mine).extend(theirs.iter().cloned());
                }
            }
        }
    }
}

/// One attribute: its value and the span of the binding that defined it
/// (`None` for attributes made by builtins).
#[derive(Clone, Debug)]
pub struct Attr {
    pub name: Name,
    pub value: Thunk,
    pub span: Option<Span>,
}

/// Sets up to this size are searched by a scan, larger ones by bisection.
const SMALL_SET: usize = 8;

/// An attribute set, sorted by name with unique names. The attributes live
/// in the same shared allocation as its count, so reaching one from a value
/// is one pointer, not two.
#[derive(Clone, Debug)]
pub struct Attrs(Rc<[Attr]>);

impl Default for Attrs {
    fn default() -> Attrs {
        Attrs(Rc::new([]))
    }
}

impl Attrs {
    pub fn new() -> Attrs {
        Attrs::default()
    }

    /// Build from attributes in any order; on duplicate names the last wins.
    pub fn from_unsorted(mut entries: Vec<Attr>) -> Attrs {
        entries.sort_by(|a, b| a.name.cmp(&b.name));
        // Stable sort keeps definition order among equal names: keep the last
        // (`dedup_by` removes the later one, so it first takes its place).
        entries.dedup_by(|later, earlier| {
            let same = later.name == earlier.name;
            if same {
                std::mem::swap(later, earlier);
            }
            same
        });
        Attrs(entries.into())
    }

    /// Build from attributes already sorted with unique names.
    pub fn from_sorted(entries: Vec<Attr>) -> Attrs {
        debug_assert!(entries.windows(2).all(|w| w[0].name < w[1].name));
        Attrs(entries.into())
    }

    /// The same set (not merely an equal one).
    pub fn ptr_eq(&self, other: &Attrs) -> bool {
        Rc::ptr_eq(&self.0, &other.0)
    }

    /// The set's address, to recognise it when met again.
    pub fn as_ptr(&self) -> *const () {
        Rc::as_ptr(&self.0).cast()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn get(&self, name: &str) -> Option<&Attr> {
        // Most sets are small, and a name is usually looked up by the very
        // allocation it was defined with (the parser gives equal names of a
        // file one): a scan that compares addresses first beats a search.
        if self.0.len() <= SMALL_SET {
            return self.0.iter().find(|a| {
                (std::ptr::eq(a.name.as_ptr(), name.as_ptr()) && a.name.len() == name.len())
                    || *a.name == *name
            });
        }
        self.0
            .binary_search_by(|a| (*a.name).cmp(name))
            .ok()
            .map(|i| &self.0[i])
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Attr> {
        self.0.iter()
    }

    /// The `i`th attribute in name order.
    pub fn entry(&self, i: usize) -> &Attr {
        &self.0[i]
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|a| &*a.name)
    }

    /// `self // other`: a shallow merge where `other` wins.
    pub fn update(&self, other: &Attrs) -> Attrs {
        if other.is_empty() {
            return self.clone();
        }
        if self.is_empty() {
            return other.clone();
        }
        let (a, b) = (&self.0, &other.0);
        let mut out = Vec::with_capacity(a.len() + b.len());
        let (mut i, mut j) = (0, 0);
        while i < a.len() && j < b.len() {
            match a[i].name.cmp(&b[j].name) {
                std::cmp::Ordering::Less => {
                    out.push(a[i].clone());
                    i += 1;
                }
                std::cmp::Ordering::Greater => {
                    out.push(b[j].clone());
                    j += 1;
                }
                std::cmp::Ordering::Equal => {
                    out.push(b[j].clone());
                    i += 1;
                    j += 1;
                }
            }
        }
        out.extend_from_slice(&a[i..]);
        out.extend_from_slice(&b[j..]);
        Attrs(out.into())
    }
}

/// A lambda and the environment it closes over.
#[derive(Debug)]
pub struct Closure {
    pub lambda: Rc<Lambda>,
    pub env: Rc<Env>,
}

/// A builtin function, possibly partially applied.
#[derive(Debug)]
pub struct BuiltinApp {
    pub builtin: &'static super::builtins::Builtin,
    pub args: Vec<Thunk>,
}

/// A frame's variables; most frames are one lambda argument, kept inline.
pub type Slots = smallvec::SmallVec<[Thunk; 1]>;

/// One frame of variables: the slots of a `let`, `rec` set or lambda call, or
/// the set of a `with`. Frames mirror `syntax::scope`'s frames one to one.
#[derive(Debug, Default)]
pub struct Env {
    pub slots: RefCell<Slots>,
    pub with: Option<Thunk>,
    pub parent: Option<Rc<Env>>,
}

impl Env {
    pub fn frame(slots: Slots, parent: &Rc<Env>) -> Rc<Env> {
        Rc::new(Env {
            slots: RefCell::new(slots),
            with: None,
            parent: Some(parent.clone()),
        })
    }

    pub fn with_scope(scope: Thunk, parent: &Rc<Env>) -> Rc<Env> {
        Rc::new(Env {
            slots: RefCell::default(),
            with: Some(scope),
            parent: Some(parent.clone()),
        })
    }

    /// The frame `depth` levels up from this one (this one at 0).
    #[inline]
    fn ancestor(self: &Rc<Env>, depth: u32) -> Option<&Rc<Env>> {
        let mut env = self;
        for _ in 0..depth {
            env = env.parent.as_ref()?;
        }
        Some(env)
    }

    #[inline]
    pub fn lookup(self: &Rc<Env>, depth: u32, index: u32) -> Thunk {
        let env = self
            .ancestor(depth)
            .expect("scope: resolved depth stays within the frame chain");
        env.slots.borrow()[index as usize].clone()
    }

    /// A variable's value, if it is computed already (only the value is
    /// cloned, not the thunk that holds it).
    #[inline]
    pub fn ready_value(self: &Rc<Env>, depth: u32, index: u32) -> Option<Value> {
        let env = self.ancestor(depth)?;
        env.slots.borrow().get(index as usize)?.value()
    }

    /// `variable.name`, if it is computed already (see `Thunk::ready_attr`).
    #[inline]
    pub fn ready_attr(self: &Rc<Env>, depth: u32, index: u32, name: &str) -> Option<Value> {
        let env = self.ancestor(depth)?;
        env.slots.borrow().get(index as usize)?.ready_attr(name)
    }

    /// `f` of the value of a variable, if it is already computed.
    pub fn peek_scalar<T>(
        self: &Rc<Env>,
        depth: u32,
        index: u32,
        f: fn(&Value) -> Option<T>,
    ) -> Option<T> {
        let env = self.ancestor(depth)?;
        let slots = env.slots.borrow();
        match slots.get(index as usize)? {
            Thunk::Ready(v) => f(v),
            Thunk::Lazy(cell) => cell.state.peek(f),
        }
    }
}

/// A value, or the recipe for one, forced at most once.
#[derive(Clone, Debug)]
pub enum Thunk {
    Ready(Value),
    Lazy(Rc<LazyCell>),
}

/// A suspended computation and the span of the expression it came from (kept
/// after forcing, so type errors can say where a value was written). With its
/// reference counts it fills one 64-byte cache line.
#[derive(Debug)]
pub struct LazyCell {
    pub origin: Span,
    pub state: StateCell,
}

impl LazyCell {
    /// End a forcing: keep the value, or on an error put the pending
    /// computation back, so forcing again fails the same way (think `tryEval`).
    #[inline]
    pub fn settle(&self, pending: Suspended, result: EvalResult<Value>) -> EvalResult<Value> {
        match result {
            Ok(v) => {
                self.state.replace(Suspended::Done(v.clone()));
                Ok(v)
            }
            Err(e) => {
                self.state.replace(pending);
                Err(e)
            }
        }
    }
}

// With an `Rc`'s two counts, one cache line.
const _: () = assert!(std::mem::size_of::<LazyCell>() <= 48);

#[derive(Debug)]
pub enum Suspended {
    /// An expression to evaluate in an environment.
    Expr(Rc<Expr>, Rc<Env>),
    /// A function to apply to arguments (what `map`, `genList`, … produce).
    Apply(Box<Application>),
    /// Being forced right now; forcing it again is infinite recursion.
    Forcing,
    Done(Value),
}

/// A function and the arguments it is to be applied to.
#[derive(Debug)]
pub struct Application {
    pub func: Value,
    pub args: Args,
}

/// The arguments of a suspended application: one or two, almost always.
pub type Args = smallvec::SmallVec<[Thunk; 2]>;

/// A thunk's state. It is only read or replaced by the methods below, and
/// none of them runs evaluation (or anything else that could reach this
/// cell) while it looks inside, so it needs no borrow flag: a `RefCell` here
/// cost a word per thunk and pushed the cell past one cache line.
pub struct StateCell(std::cell::UnsafeCell<Suspended>);

impl StateCell {
    pub fn new(state: Suspended) -> StateCell {
        StateCell(std::cell::UnsafeCell::new(state))
    }

    /// The value, if it is computed.
    #[inline]
    pub fn done(&self) -> Option<Value> {
        // SAFETY: the reference lives only inside this function, which calls
        // nothing that could reach this cell (a value's clone only counts).
        match unsafe { &*self.0.get() } {
            Suspended::Done(v) => Some(v.clone()),
            _ => None,
        }
    }

    /// Take the pending computation out, leaving `Forcing` in its place.
    #[inline]
    pub fn take_pending(&self) -> Option<Suspended> {
        // SAFETY: as in `done`.
        let state = unsafe { &mut *self.0.get() };
        match state {
            Suspended::Expr(..) | Suspended::Apply(..) => {
                Some(std::mem::replace(state, Suspended::Forcing))
            }
            Suspended::Done(_) | Suspended::Forcing => None,
        }
    }

    /// Put a state in, returning the one it replaces (dropped by the caller,
    /// after the cell is consistent again).
    #[inline]
    pub fn replace(&self, next: Suspended) -> Suspended {
        // SAFETY: as in `done`; the old state is moved out, not dropped here.
        std::mem::replace(unsafe { &mut *self.0.get() }, next)
    }

    /// The computed value of attribute `name` of the computed set in this
    /// cell, if both are computed.
    #[inline]
    pub fn ready_attr(&self, name: &str) -> Option<Value> {
        // SAFETY: reads only: of this cell, and then of the attribute's own.
        match unsafe { &*self.0.get() } {
            Suspended::Done(v) => ready_attr_of(v, name),
            _ => None,
        }
    }

    /// `f` of the value, if it is computed. `f` is a plain function, so it
    /// cannot reach back into the evaluator (or this cell).
    #[inline]
    pub fn peek<T>(&self, f: fn(&Value) -> Option<T>) -> Option<T> {
        // SAFETY: a read; `f` captures nothing and evaluates nothing.
        match unsafe { &*self.0.get() } {
            Suspended::Done(v) => f(v),
            _ => None,
        }
    }

    fn get_mut(&mut self) -> &mut Suspended {
        self.0.get_mut()
    }
}

/// `value.name`, when `value` is a set and that attribute is computed.
#[inline]
fn ready_attr_of(value: &Value, name: &str) -> Option<Value> {
    match value {
        Value::Attrs(attrs) => attrs.get(name)?.value.value(),
        _ => None,
    }
}

impl std::fmt::Debug for StateCell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // SAFETY: formatting reads, and evaluates nothing.
        unsafe { &*self.0.get() }.fmt(f)
    }
}

impl Thunk {
    pub fn new(expr: Rc<Expr>, env: Rc<Env>) -> Thunk {
        let origin = expr.span;
        Thunk::Lazy(Rc::new(LazyCell {
            origin,
            state: StateCell::new(Suspended::Expr(expr, env)),
        }))
    }

    pub fn apply(func: Value, args: Args, span: Span) -> Thunk {
        Thunk::Lazy(Rc::new(LazyCell {
            origin: span,
            state: StateCell::new(Suspended::Apply(Box::new(Application { func, args }))),
        }))
    }

    /// The value, if it is already computed (nothing is forced).
    #[inline]
    pub fn value(&self) -> Option<Value> {
        match self {
            Thunk::Ready(v) => Some(v.clone()),
            Thunk::Lazy(cell) => cell.state.done(),
        }
    }

    /// `thunk.name` when the set and the attribute are both computed already
    /// (`None` otherwise; nothing is forced). Only the result is cloned.
    #[inline]
    pub fn ready_attr(&self, name: &str) -> Option<Value> {
        match self {
            Thunk::Ready(v) => ready_attr_of(v, name),
            Thunk::Lazy(cell) => cell.state.ready_attr(name),
        }
    }

    /// The same thunk or the same shared value: Nix treats such list and set
    /// elements as equal without comparing them (so even functions match).
    pub fn same(&self, other: &Thunk) -> bool {
        match (self, other) {
            (Thunk::Lazy(a), Thunk::Lazy(b)) => Rc::ptr_eq(a, b),
            (Thunk::Ready(a), Thunk::Ready(b)) => match (a, b) {
                (Value::Lambda(x), Value::Lambda(y)) => Rc::ptr_eq(x, y),
                (Value::Builtin(x), Value::Builtin(y)) => Rc::ptr_eq(x, y),
                (Value::List(x), Value::List(y)) => Rc::ptr_eq(x, y),
                (Value::Attrs(x), Value::Attrs(y)) => x.ptr_eq(y),
                _ => false,
            },
            _ => false,
        }
    }

    /// Where the value was written, when known.
    pub fn origin(&self) -> Option<Span> {
        match self {
            Thunk::Ready(_) => None,
            Thunk::Lazy(cell) => Some(cell.origin),
        }
    }
}

// ── dropping ──────────────────────────────────────────────────────────────
//
// A value can be nested a million levels deep (a list in a list in …, a
// thunk whose frame holds the previous thunk, …). Dropping it the ordinary
// way recurses once per level and would overflow the stack, so thunk cells
// and frames hand what they own to a work list instead, which the outermost
// drop empties in a loop.

/// What a thunk cell or a frame owned, waiting to be dropped (held only to
/// be dropped, never read).
#[allow(dead_code)]
enum Garbage {
    State(Suspended),
    Slots(Slots),
}

thread_local! {
    static GARBAGE: RefCell<Vec<Garbage>> = const { RefCell::new(Vec::new()) };
    /// How many cell and frame drops are in progress inside each other.
    static DROP_NESTING: Cell<u32> = const { Cell::new(0) };
    static HAS_GARBAGE: Cell<bool> = const { Cell::new(false) };
}

/// Drops nested deeper than this wait in the work list; shallower ones (all
/// of them, almost always) happen in place, at the cost of a counter.
const MAX_DROP_NESTING: u32 = 200;

/// Whether a drop may happen in place, one level deeper (then call
/// `leave_drop` after it), or must go to the work list (`defer`).
#[inline]
fn enter_drop() -> bool {
    let nesting = DROP_NESTING.get();
    if nesting >= MAX_DROP_NESTING {
        return false;
    }
    DROP_NESTING.set(nesting + 1);
    true
}

#[inline]
fn leave_drop() {
    let nesting = DROP_NESTING.get() - 1;
    DROP_NESTING.set(nesting);
    if nesting == 0 && HAS_GARBAGE.get() {
        drain_garbage();
    }
}

#[cold]
fn defer(garbage: Garbage) {
    // (If the thread is being torn down and the list is gone, the closure
    // and with it the garbage are dropped in place.)
    let _ = GARBAGE.try_with(move |g| g.borrow_mut().push(garbage));
    HAS_GARBAGE.set(true);
}

/// The outermost drop empties the work list, each item from the top again.
#[cold]
fn drain_garbage() {
    DROP_NESTING.set(1);
    while let Some(next) = GARBAGE.try_with(|g| g.borrow_mut().pop()).ok().flatten() {
        drop(next);
    }
    HAS_GARBAGE.set(false);
    DROP_NESTING.set(0);
}

impl Drop for LazyCell {
    fn drop(&mut self) {
        let state = self.state.get_mut();
        let owns_more = match &*state {
            Suspended::Expr(..) | Suspended::Apply(..) => true,
            Suspended::Done(v) => matches!(
                v,
                Value::List(_) | Value::Attrs(_) | Value::Lambda(_) | Value::Builtin(_)
            ),
            Suspended::Forcing => false,
        };
        if !owns_more {
            return;
        }
        if enter_drop() {
            // Assigning drops the old state in place.
            *state = Suspended::Forcing;
            leave_drop();
        } else {
            defer(Garbage::State(std::mem::replace(state, Suspended::Forcing)));
        }
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let slots = self.slots.get_mut();
        // Frames of numbers, or of thunks someone else holds too (most lambda
        // calls), have nothing deep to drop: each goes with a count.
        let shallow = |t: &Thunk| match t {
            Thunk::Ready(Value::Int(_) | Value::Float(_) | Value::Bool(_) | Value::Null) => true,
            Thunk::Lazy(cell) => Rc::strong_count(cell) > 1,
            Thunk::Ready(_) => false,
        };
        if slots.iter().all(shallow) {
            return;
        }
        if enter_drop() {
            slots.clear();
            leave_drop();
        } else {
            defer(Garbage::Slots(std::mem::take(slots)));
        }
    }
}

impl From<Value> for Thunk {
    fn from(v: Value) -> Thunk {
        Thunk::Ready(v)
    }
}
