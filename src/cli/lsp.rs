//! `bottle lsp`: the language server on standard input and output; the
//! server itself is `crate::lsp`.

use clap::Args;
use std::process::ExitCode;

/// Serve the Language Server Protocol on standard input and output.
///
/// For editors: diagnostics as you type (syntax, evaluation and schema
/// errors), completion of bottle fields, names, builtins and attributes,
/// hover docs, and go to definition. See docs/tools.md for set-up.
#[derive(Args)]
#[command(
    after_help = "Neovim (0.8+):\n  vim.lsp.start({ name = 'bottle', cmd = { 'bottle', 'lsp' } })"
)]
pub struct LspArgs {
    /// Add to the search path for `<...>` lookups: `DIR` or `PREFIX=DIR`.
    #[arg(short = 'I', long = "include", value_name = "PATH")]
    pub include: Vec<String>,
    /// Accepted for editors that pass it; stdio is the only transport.
    #[arg(long, hide = true)]
    pub stdio: bool,
}

pub fn run(args: LspArgs) -> miette::Result<ExitCode> {
    crate::lsp::serve(args.include)?;
    Ok(ExitCode::SUCCESS)
}
