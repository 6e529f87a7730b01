//! `bottle sidecar …`: run one sidecar on its own, outside `bottle run` (for
//! debugging a policy, tests and benchmarks). `bottle run` starts the same
//! code in-process.
use crate::sidecar::egress::{self, Egress, EgressOptions, Listen, Listener, Policy};
use clap::{Args, Subcommand};
use miette::IntoDiagnostic;
use std::path::PathBuf;
use std::process::ExitCode;

/// Run a sidecar by itself.
#[derive(Args)]
pub struct SidecarArgs {
    #[command(subcommand)]
    pub sidecar: SidecarCommand,
}

#[derive(Subcommand)]
pub enum SidecarCommand {
    /// The egress proxy: allow only the routes of an egress.yaml policy.
    Egress(EgressArgs),
}

/// Serve the egress proxy until interrupted (Ctrl-C or SIGTERM).
#[derive(Args)]
pub struct EgressArgs {
    /// The policy file (egress.yaml, as rendered by `bottle build`).
    #[arg(long)]
    pub policy: PathBuf,
    /// Where to listen: `unix:/path/to/socket` or `HOST:PORT` (port 0 picks one).
    #[arg(long)]
    pub listen: Listen,
    /// Append one JSON line per decision to this file.
    #[arg(long)]
    pub audit: Option<PathBuf>,
    /// Write this run's CA certificate (PEM) here, for clients of inspected routes.
    #[arg(long)]
    pub ca_cert: Option<PathBuf>,
    /// Worker threads (default: 8 per CPU, between 16 and 64).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
    pub workers: Option<u16>,
}

pub fn run(args: SidecarArgs) -> miette::Result<ExitCode> {
    match args.sidecar {
        SidecarCommand::Egress(args) => run_egress(args),
    }
}

fn run_egress(args: EgressArgs) -> miette::Result<ExitCode> {
    let policy = Policy::load(&args.policy)?;
    let options = EgressOptions {
        audit: args.audit,
        ..EgressOptions::default()
    };
    let egress = Egress::new(policy, options)?;
    if let Some(path) = &args.ca_cert {
        std::fs::write(path, egress.ca_certificate_pem())
            .into_diagnostic()
            .map_err(|e| {
                e.wrap_err(format!(
                    "cannot write the CA certificate to {}",
                    path.display()
                ))
            })?;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(
            args.workers
                .map_or_else(egress::recommended_workers, usize::from),
        )
        .enable_all()
        .build()
        .into_diagnostic()?;
    runtime.block_on(async move {
        let listener = Listener::bind(&args.listen).await.map_err(|err| {
            miette::miette!(
                help = "pick another address, or stop whatever listens there",
                "cannot listen on {}: {err}",
                args.listen
            )
        })?;
        // One line on stdout says where it listens (the real port when 0 was asked).
        println!("egress listening on {}", listener.local());
        egress::serve_on(egress, listener, shutdown_signal())
            .await
            .into_diagnostic()
    })?;
    Ok(ExitCode::SUCCESS)
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
    }
}
