//! Starting a plan's sidecars, each on a Unix socket in the run directory.
//! The egress proxy runs inside `bottle run` itself (`crate::sidecar::egress`),
//! as a critical part of the run's supervisor.
use super::plan::{Plan, SidecarKind};
use super::rundir::RunDir;
use super::supervisor::{Role, Supervisor};
use super::RunError;
use crate::sidecar::egress::{self, Egress, EgressOptions, Listen, Listener, Policy};
use std::path::PathBuf;

/// A sidecar that is ready for connections.
pub struct Running {
    pub name: String,
    pub guest_port: u16,
    pub socket: PathBuf,
    /// A CA the guest must trust (the egress proxy's, for inspected routes).
    pub ca_certificate: Option<String>,
}

/// Start every sidecar of `plan`; each is listening when this returns.
pub async fn start(
    plan: &Plan,
    run: &RunDir,
    supervisor: &mut Supervisor,
) -> miette::Result<Vec<Running>> {
    let mut running = Vec::new();
    for sidecar in &plan.sidecars {
        let failed = |reason: String, help: &str| RunError::Start {
            part: format!("sidecar `{}`", sidecar.name),
            reason,
            help: help.into(),
        };
        let (socket, ca_certificate) = match &sidecar.kind {
            SidecarKind::Egress { policy } => {
                let policy = Policy::load(policy)?;
                let options = EgressOptions {
                    audit: Some(run.file(&format!("{}-audit.jsonl", sidecar.name))),
                    ..EgressOptions::default()
                };
                let egress = Egress::new(policy, options)?;
                let ca = egress.ca_certificate_pem();
                let socket = run.file(&format!("{}.sock", sidecar.name));
                // Bound before this returns: the sidecar is ready when start() is.
                let listener = Listener::bind(&Listen::Unix(socket.clone()))
                    .await
                    .map_err(|e| {
                        failed(e.to_string(), "check that the run directory is writable")
                    })?;
                supervisor.task(
                    format!("the {} sidecar", sidecar.name),
                    Role::Critical,
                    async move {
                        egress::serve_on(egress, listener, std::future::pending())
                            .await
                            .map_err(|e| e.to_string())
                    },
                );
                (socket, Some(ca))
            }
        };
        running.push(Running {
            name: sidecar.name.clone(),
            guest_port: sidecar.guest_port,
            socket,
            ca_certificate,
        });
    }
    Ok(running)
}
