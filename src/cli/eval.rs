//! `bottle eval`: evaluate a recipe and print its value.
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;

/// Evaluate a recipe (or an expression with -E) and print the value.
#[derive(Args)]
pub struct EvalArgs {
    /// The recipe file to evaluate.
    pub file: Option<PathBuf>,
    /// Evaluate this expression instead of a file.
    #[arg(short = 'E', long = "expr")]
    pub expr: Option<String>,
    /// Select an attribute path of the result, e.g. `-A bottles.dev`.
    #[arg(short = 'A', long = "attr")]
    pub attr: Option<String>,
    /// Print the fully forced value as JSON.
    #[arg(long)]
    pub json: bool,
    /// Add a directory to the search path for `<...>` lookups.
    #[arg(short = 'I', long = "include")]
    pub include: Vec<PathBuf>,
}

pub fn run(_args: EvalArgs) -> miette::Result<ExitCode> {
    Err(miette::miette!("not implemented yet"))
}
