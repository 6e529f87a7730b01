//! `bottle fmt`: rewrite recipes in the one house style (`syntax::format`).

use crate::diagnostics::RecipeDiagnostic;
use crate::syntax::{format, SourceMap};
use clap::Args;
use miette::{miette, Report};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Format recipes: two-space indentation, one binding or element per line in
/// sets and lists written on several lines, short ones kept on one line;
/// comments and strings are kept as written.
///
/// Directories are searched for `.bottle` and `.nix` files. With --check,
/// nothing is written: the files that would change are listed and the exit
/// status is 1 if there are any.
#[derive(Args)]
#[command(
    after_help = "Examples:\n  bottle fmt recipe.bottle\n  bottle fmt --check stdlib examples"
)]
pub struct FmtArgs {
    /// Files or directories to format.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Change nothing; list the files that are not formatted and exit 1 if any.
    #[arg(long)]
    pub check: bool,
}

pub fn run(args: FmtArgs) -> miette::Result<ExitCode> {
    crate::eval::run_with_stack(move || run_on_stack(args))
}

fn run_on_stack(args: FmtArgs) -> miette::Result<ExitCode> {
    let mut files = Vec::new();
    for path in &args.paths {
        collect(path, &mut files)?;
    }
    let mut unformatted = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).map_err(|e| {
            miette!(
                help = "check the path and that the file is UTF-8 text",
                "cannot read {}: {e}",
                file.display()
            )
        })?;
        let formatted = format_file(file, &text)?;
        if formatted == text {
            continue;
        }
        if args.check {
            unformatted.push(file);
        } else {
            std::fs::write(file, formatted).map_err(|e| {
                miette!(
                    help = "check that the file is writable",
                    "cannot write {}: {e}",
                    file.display()
                )
            })?;
        }
    }
    if unformatted.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    let list: Vec<String> = unformatted
        .iter()
        .map(|f| format!("  {}", f.display()))
        .collect();
    Err(miette!(
        help = "run `bottle fmt` on them to format them",
        "{} file(s) are not formatted:\n{}",
        unformatted.len(),
        list.join("\n")
    ))
}

/// One file's formatted text, or its syntax error as a report.
fn format_file(path: &Path, text: &str) -> miette::Result<String> {
    let mut sources = SourceMap::default();
    let file = sources.add(
        path.display().to_string(),
        Some(path.to_path_buf()),
        text.into(),
    );
    format::format(file, text).map_err(|e| {
        let mut d = RecipeDiagnostic::at(&sources, e.span, e.message, "here").with_help(e.help);
        for (span, label) in e.labels {
            d = d.with_label(span, label, e.span);
        }
        Report::new(d)
    })
}

/// `path` itself, or the `.bottle` and `.nix` files under it, sorted.
fn collect(path: &Path, files: &mut Vec<PathBuf>) -> miette::Result<()> {
    let meta = std::fs::metadata(path).map_err(|e| {
        miette!(
            help = "give files or directories that exist",
            "cannot read {}: {e}",
            path.display()
        )
    })?;
    if !meta.is_dir() {
        files.push(path.to_path_buf());
        return Ok(());
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(|e| miette!("cannot list {}: {e}", path.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for entry in entries {
        if entry.is_dir() {
            collect(&entry, files)?;
        } else if entry
            .extension()
            .is_some_and(|ext| ext == "bottle" || ext == "nix")
        {
            files.push(entry);
        }
    }
    Ok(())
}
