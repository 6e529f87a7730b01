//! `bottle eval`: evaluate a recipe and print its value.

use crate::eval::{Context, EvalError, Evaluator};
use crate::syntax::{FileId, Span};
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;

/// Evaluate a recipe (or an expression with -E) and print its value.
///
/// The value is forced completely. Without --json it is printed in Nix
/// syntax; with --json exactly as `nix-instantiate --eval --strict --json`
/// would print it.
#[derive(Args)]
#[command(
    after_help = "Examples:\n  bottle eval examples/minimal.bottle\n  bottle eval examples/fleet.bottle -A dev --json\n  bottle eval -E '1 + 2'"
)]
pub struct EvalArgs {
    /// The recipe file to evaluate.
    #[arg(required_unless_present = "expr", conflicts_with = "expr")]
    pub file: Option<PathBuf>,
    /// Evaluate this expression instead of a file.
    #[arg(short = 'E', long = "expr", value_name = "EXPR")]
    pub expr: Option<String>,
    /// Select an attribute path of the result, e.g. `-A bottles.dev`.
    #[arg(short = 'A', long = "attr", value_name = "ATTRPATH")]
    pub attr: Option<String>,
    /// Print the fully forced value as JSON.
    #[arg(long)]
    pub json: bool,
    /// Add to the search path for `<...>` lookups: `DIR` or `PREFIX=DIR`.
    #[arg(short = 'I', long = "include", value_name = "PATH")]
    pub include: Vec<String>,
}

pub fn run(args: EvalArgs) -> miette::Result<ExitCode> {
    let search_path = super::search_path(&args.include);
    let EvalArgs {
        file,
        expr,
        attr,
        json,
        ..
    } = args;
    crate::eval::run_with_stack(move || {
        let mut ev = std::mem::ManuallyDrop::new(Evaluator::new(search_path));
        match evaluate(&mut ev, file, expr, attr.as_deref(), json) {
            Ok(rendered) => {
                use std::io::Write;
                // A reader that stops early (`| head`) is not an error.
                let _ = writeln!(std::io::stdout(), "{rendered}");
                Ok(ExitCode::SUCCESS)
            }
            // The report needs the evaluator's sources, so it is made here;
            // printing it is the CLI's one exit path.
            Err(e) => Err(crate::diagnostics::eval_report(&ev.sources, &e)),
        }
    })
}

fn evaluate(
    ev: &mut Evaluator,
    file: Option<PathBuf>,
    expr: Option<String>,
    attr: Option<&str>,
    json: bool,
) -> Result<String, EvalError> {
    let value = match (file, expr) {
        (_, Some(text)) => ev.eval_source("«expression»", &text)?,
        (Some(path), None) => ev.eval_file(&path)?,
        (None, None) => unreachable!("clap: a file or -E is required"),
    };
    let value = ev.auto_call(value)?;
    let value = match attr {
        Some(path) => {
            let v = ev.select_path(value, path)?;
            ev.auto_call(v)?
        }
        None => value,
    };
    let span = Span::new(FileId(u32::MAX), 0, 0);
    let mut out = String::new();
    if json {
        ev.to_json(&value, span, &mut out, &mut Context::default())?;
    } else {
        ev.to_nix(&value, span, &mut out)?;
    }
    // The process ends right after printing; freeing a large value one piece
    // at a time would only delay it (the evaluator is not freed either).
    std::mem::forget(value);
    Ok(out)
}
