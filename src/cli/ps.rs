//! `bottle ps`: list the running bottles (stale runs are cleaned first).
use crate::realize::rundir;
use clap::Args;
use std::process::ExitCode;

/// List running bottles: name, bottle's pid, age, requests waiting for a
/// person (`-` when the bottle asks none) and command.
#[derive(Args)]
pub struct PsArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: PsArgs) -> miette::Result<ExitCode> {
    let runs = rundir::list();
    if args.json {
        let runs: Vec<serde_json::Value> = runs
            .iter()
            .map(|run| {
                let mut value = serde_json::to_value(run).expect("run summaries serialize");
                value["pending"] = serde_json::json!(super::approve::pending_count(&run.name));
                value
            })
            .collect();
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
    println!(
        "{:<20} {:>8} {:>8} {:>8}  COMMAND",
        "NAME", "PID", "AGE", "PENDING"
    );
    for run in runs {
        let age = now.saturating_sub(run.started);
        let pending = super::approve::pending_count(&run.name)
            .map_or_else(|| "-".to_string(), |n| n.to_string());
        println!(
            "{:<20} {:>8} {:>7}s {:>8}  {}",
            run.name,
            run.pid,
            age,
            pending,
            run.command.join(" ")
        );
    }
    Ok(ExitCode::SUCCESS)
}
