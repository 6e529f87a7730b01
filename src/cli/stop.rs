//! `bottle stop NAME`: end a running bottle; its parts stop and its run
//! directory is removed by its own `bottle` process (or here, if that is gone).
use crate::realize::rundir;
use clap::Args;
use std::process::ExitCode;
use std::time::Duration;

/// Stop a running bottle (see `bottle ps`).
#[derive(Args)]
pub struct StopArgs {
    /// The run's name.
    pub name: String,
    /// Seconds to wait for it to stop.
    #[arg(long, default_value_t = 15)]
    pub timeout: u64,
}

pub fn run(args: StopArgs) -> miette::Result<ExitCode> {
    rundir::stop(&args.name, Duration::from_secs(args.timeout))?;
    Ok(ExitCode::SUCCESS)
}
