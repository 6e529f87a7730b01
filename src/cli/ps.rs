//! `bottle ps`: list the running bottles (stale runs are cleaned first).
use crate::realize::rundir;
use clap::Args;
use std::process::ExitCode;

/// List running bottles: name, bottle's pid, age and command.
#[derive(Args)]
pub struct PsArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: PsArgs) -> miette::Result<ExitCode> {
    let runs = rundir::list();
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&runs).expect("run summaries serialize")
        );
        return Ok(ExitCode::SUCCESS);
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    println!("{:<20} {:>8} {:>8}  COMMAND", "NAME", "PID", "AGE");
    for run in runs {
        let age = now.saturating_sub(run.started);
        println!(
            "{:<20} {:>8} {:>7}s  {}",
            run.name,
            run.pid,
            age,
            run.command.join(" ")
        );
    }
    Ok(ExitCode::SUCCESS)
}
