//! `bottle gc`: remove every store path no gc root reaches.
use super::build::StoreArg;
use clap::Args;
use std::process::ExitCode;

/// Delete store paths that no root (a `-o` result link, a running bottle) reaches.
#[derive(Args)]
pub struct GcArgs {
    #[command(flatten)]
    pub store: StoreArg,
}

pub fn run(args: GcArgs) -> miette::Result<ExitCode> {
    let store = args.store.open()?;
    let report = store.gc()?;
    for name in &report.removed {
        eprintln!("removed {name}");
    }
    for root in &report.stale_roots {
        eprintln!("dropped stale root {root}");
    }
    println!(
        "{} paths removed ({:.1} KiB freed), {} alive, {} interrupted builds cleaned",
        report.removed.len(),
        report.freed_bytes as f64 / 1024.0,
        report.alive,
        report.partial
    );
    Ok(ExitCode::SUCCESS)
}
