//! Evaluation errors. `throw` and failed `assert`s are catchable by
//! `builtins.tryEval`; everything else (abort, type errors, infinite
//! recursion, …) is fatal. Errors collect the call trace as they unwind.

use crate::syntax::{Span, SyntaxError};

#[derive(Debug, Clone)]
pub struct EvalError(Box<ErrorInner>);

#[derive(Debug, Clone)]
pub struct ErrorInner {
    pub kind: ErrorKind,
    pub span: Span,
    pub help: Option<String>,
    /// Extra labelled spans in the same report (e.g. where a value came from).
    pub labels: Vec<(Span, String)>,
    /// Calls the error unwound through, innermost first.
    pub trace: Vec<(Span, String)>,
}

#[derive(Debug, Clone)]
pub enum ErrorKind {
    Syntax,
    /// `throw "msg"`: catchable.
    Throw(String),
    /// A failed `assert`: catchable.
    AssertionFailed,
    /// `abort "msg"`: not catchable.
    Abort(String),
    /// A value that needs itself: not catchable.
    InfiniteRecursion,
    /// Any other fatal error, with its message.
    Fatal(String),
}

/// Most traces are short; long ones keep their ends.
const TRACE_KEEP: usize = 12;

impl EvalError {
    pub fn new(kind: ErrorKind, span: Span) -> EvalError {
        EvalError(Box::new(ErrorInner {
            kind,
            span,
            help: None,
            labels: Vec::new(),
            trace: Vec::new(),
        }))
    }

    pub fn fatal(message: impl Into<String>, span: Span) -> EvalError {
        EvalError::new(ErrorKind::Fatal(message.into()), span)
    }

    pub fn with_help(mut self, help: impl Into<String>) -> EvalError {
        self.0.help = Some(help.into());
        self
    }

    pub fn with_help_opt(mut self, help: Option<String>) -> EvalError {
        if help.is_some() {
            self.0.help = help;
        }
        self
    }

    pub fn with_label(mut self, span: Span, label: impl Into<String>) -> EvalError {
        self.0.labels.push((span, label.into()));
        self
    }

    /// Record that the error passed through a call at `span`.
    pub fn in_call(mut self, span: Span, what: impl FnOnce() -> String) -> EvalError {
        let trace = &mut self.0.trace;
        if trace.last().is_some_and(|(s, _)| *s == span) {
            return self;
        }
        if trace.len() < TRACE_KEEP {
            trace.push((span, what()));
        } else if trace.len() == TRACE_KEEP {
            trace.push((span, "… (more calls)".into()));
        }
        self
    }

    /// For an infinite recursion, mark the reference that asked for the value
    /// again (the first such reference, innermost, is the useful one).
    pub fn needed_at(mut self, span: Span) -> EvalError {
        if matches!(self.0.kind, ErrorKind::InfiniteRecursion)
            && self.0.labels.is_empty()
            && span != self.0.span
        {
            self.0
                .labels
                .push((span, "needed again here, while it is being computed".into()));
        }
        self
    }

    pub fn catchable(&self) -> bool {
        matches!(
            self.0.kind,
            ErrorKind::Throw(_) | ErrorKind::AssertionFailed
        )
    }

    pub fn inner(&self) -> &ErrorInner {
        &self.0
    }

    pub fn kind(&self) -> &ErrorKind {
        &self.0.kind
    }

    pub fn span(&self) -> Span {
        self.0.span
    }

    pub fn message(&self) -> String {
        match &self.0.kind {
            ErrorKind::Syntax => "syntax error".into(),
            ErrorKind::Throw(m) => m.clone(),
            ErrorKind::AssertionFailed => "assertion failed".into(),
            ErrorKind::Abort(m) => format!("evaluation aborted: {m}"),
            ErrorKind::InfiniteRecursion => "infinite recursion encountered".into(),
            ErrorKind::Fatal(m) => m.clone(),
        }
    }
}

impl From<SyntaxError> for EvalError {
    fn from(e: SyntaxError) -> EvalError {
        let mut err = EvalError::new(ErrorKind::Fatal(e.message), e.span);
        err.0.help = e.help;
        err.0.labels = e.labels;
        err
    }
}

pub type EvalResult<T> = Result<T, EvalError>;
