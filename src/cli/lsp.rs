//! `bottle lsp`: see `crate::lsp`.
use clap::Args;
use std::process::ExitCode;

/// Serve the Language Server Protocol on standard input and output.
#[derive(Args)]
pub struct LspArgs {}

pub fn run(_args: LspArgs) -> miette::Result<ExitCode> {
    Ok(ExitCode::SUCCESS)
}
