//! One path from any user-facing error to what the user sees: a miette report
//! with the source line, a labelled span and a `help:`. ("Did you mean"
//! suggestions are computed in `crate::suggest`.)

pub use miette::Report;

/// Print a report to stderr in miette's graphical form. A closed stderr is
/// not worth a panic.
pub fn print(report: Report) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{report:?}");
}

use crate::eval::EvalError;
use crate::syntax::{SourceMap, Span};
use miette::{Diagnostic, LabeledSpan, NamedSource, SourceCode};
use std::fmt;
use std::sync::Arc;

/// A diagnostic about recipe text: a message, labelled spans in one source,
/// a help line, and related diagnostics (the call trace) in their own sources.
#[derive(Debug)]
pub struct RecipeDiagnostic {
    message: String,
    source: Option<NamedSource<Arc<str>>>,
    labels: Vec<LabeledSpan>,
    help: Option<String>,
    related: Vec<RecipeDiagnostic>,
}

impl fmt::Display for RecipeDiagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for RecipeDiagnostic {}

impl Diagnostic for RecipeDiagnostic {
    fn source_code(&self) -> Option<&dyn SourceCode> {
        self.source.as_ref().map(|s| s as &dyn SourceCode)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        if self.source.is_none() || self.labels.is_empty() {
            return None;
        }
        Some(Box::new(self.labels.iter().cloned()))
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }

    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn Diagnostic> + 'a>> {
        if self.related.is_empty() {
            return None;
        }
        Some(Box::new(self.related.iter().map(|d| d as &dyn Diagnostic)))
    }
}

impl RecipeDiagnostic {
    /// A diagnostic at `span` with a primary label.
    pub fn at(
        sources: &SourceMap,
        span: Span,
        message: impl Into<String>,
        label: impl Into<String>,
    ) -> Self {
        let mut d = RecipeDiagnostic {
            message: message.into(),
            source: None,
            labels: Vec::new(),
            help: None,
            related: Vec::new(),
        };
        if span.file.0 != u32::MAX {
            let src = sources.get(span.file);
            d.source = Some(NamedSource::new(src.name.clone(), src.text.clone()));
            d.labels.push(LabeledSpan::new_primary_with_span(
                Some(label.into()),
                (span.start as usize, span.len()),
            ));
        }
        d
    }

    pub fn with_help(mut self, help: Option<String>) -> Self {
        self.help = help;
        self
    }

    /// A secondary label; shown only when it lies in the same source.
    pub fn with_label(mut self, span: Span, label: impl Into<String>, primary: Span) -> Self {
        if span.file == primary.file && span.file.0 != u32::MAX {
            self.labels.push(LabeledSpan::new_with_span(
                Some(label.into()),
                (span.start as usize, span.len()),
            ));
        } else {
            // Not in this source: as a related note with its own source.
            self.related.push(RecipeDiagnostic {
                message: label.into(),
                source: None,
                labels: Vec::new(),
                help: None,
                related: Vec::new(),
            });
        }
        self
    }
}

/// `file:line:col` of a span, for trace lines.
pub fn location(sources: &SourceMap, span: Span) -> String {
    let src = sources.get(span.file);
    let (line, col) = src.line_col(span.start);
    format!("{}:{line}:{col}", src.name)
}

/// Turn an evaluation error into a report: the error at its span, other
/// spans it names as labels, and the calls it unwound through as a trace.
pub fn eval_report(sources: &SourceMap, err: &EvalError) -> Report {
    let inner = err.inner();
    let label = match &inner.kind {
        crate::eval::ErrorKind::Throw(_) => "thrown here",
        crate::eval::ErrorKind::Abort(_) => "aborted here",
        crate::eval::ErrorKind::AssertionFailed => "this assertion failed",
        _ => "here",
    };
    let mut help = inner.help.clone();
    let mut d = RecipeDiagnostic::at(sources, inner.span, err.message(), label);
    for (span, l) in &inner.labels {
        if span.file.0 == u32::MAX {
            continue;
        }
        if span.file == inner.span.file {
            d = d.with_label(*span, l.clone(), inner.span);
        } else {
            d.related
                .push(RecipeDiagnostic::at(sources, *span, l.clone(), l.clone()));
        }
    }
    let trace: Vec<String> = inner
        .trace
        .iter()
        .filter(|(span, _)| span.file.0 != u32::MAX && *span != inner.span)
        .map(|(span, what)| format!("  {what} at {}", location(sources, *span)))
        .collect();
    if !trace.is_empty() {
        let mut text = help.take().map(|h| format!("{h}\n")).unwrap_or_default();
        text.push_str("trace (innermost first):\n");
        text.push_str(&trace.join("\n"));
        help = Some(text);
    }
    Report::new(d.with_help(help))
}
