//! `bottle store …`: inspect the store (`verify`).
use super::build::StoreArg;
use clap::{Args, Subcommand};
use std::process::ExitCode;

/// Inspect the store.
#[derive(Args)]
pub struct StoreArgs {
    #[command(subcommand)]
    pub command: StoreCommand,
}

#[derive(Subcommand)]
pub enum StoreCommand {
    /// Re-hash every store path; report tampered, unrecorded or partial ones (exit 1 if any).
    Verify {
        #[command(flatten)]
        store: StoreArg,
    },
}

pub fn run(args: StoreArgs) -> miette::Result<ExitCode> {
    match args.command {
        StoreCommand::Verify { store } => {
            let store = store.open()?;
            let report = store.verify()?;
            for problem in &report.problems {
                println!("{problem}");
            }
            eprintln!(
                "checked {} paths in {}: {} problems",
                report.checked,
                store.root().display(),
                report.problems.len()
            );
            Ok(if report.problems.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(super::EXIT_FAILURE)
            })
        }
    }
}
