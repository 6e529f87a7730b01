//! One path from any user-facing error to what the user sees: a miette report
//! with the source line, a labelled span and a `help:`.

pub use miette::Report;

/// Print a report to stderr in miette's graphical form.
pub fn print(report: Report) {
    eprintln!("{report:?}");
}
