//! Starting a plan's sidecars, each on a Unix socket in the run directory.
//! The egress proxy and the git gate run inside `bottle run` itself
//! (`crate::sidecar::egress`, `crate::sidecar::git_gate`), as critical parts
//! of the run's supervisor.
use super::plan::{Plan, SidecarKind};
use super::rundir::RunDir;
use super::supervisor::{Role, Supervisor};
use super::RunError;
use crate::sidecar::egress::{self, Egress, EgressOptions, Listen, Listener, Policy};
use crate::sidecar::git_gate;
use std::path::PathBuf;
use std::sync::Arc;

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
    options: &super::RunOptions,
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
                let approver = supervise(&policy, run, supervisor, options)
                    .await
                    .map_err(|e| failed(e, "check that the run directory is writable"))?;
                let options = EgressOptions {
                    audit: Some(run.file(&format!("{}-audit.jsonl", sidecar.name))),
                    approver,
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
            SidecarKind::GitGate { gate, .. } => {
                let socket = run.file(&format!("{}.sock", sidecar.name));
                let hook_program = std::env::current_exe()
                    .map_err(|e| failed(e.to_string(), "run bottle from an executable file"))?;
                let gate = git_gate::GitGate::prepare(
                    gate,
                    git_gate::GateOptions {
                        state_dir: run.file(&sidecar.name),
                        audit: run.file(&format!("{}-audit.jsonl", sidecar.name)),
                        hook_program,
                    },
                )
                .await?;
                let listener = Listener::bind(&Listen::Unix(socket.clone()))
                    .await
                    .map_err(|e| {
                        failed(e.to_string(), "check that the run directory is writable")
                    })?;
                supervisor.task(
                    format!("the {} sidecar", sidecar.name),
                    Role::Critical,
                    async move {
                        std::sync::Arc::new(gate)
                            .serve_on(listener, std::future::pending())
                            .await
                            .map_err(|e| e.to_string())
                    },
                );
                (socket, None)
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

/// When the policy has routes a person must allow (or asks for undeclared
/// hosts): the run's approval broker
/// and its control socket (`crate::supervise`), a best-effort part.
async fn supervise(
    policy: &Policy,
    run: &RunDir,
    supervisor: &mut Supervisor,
    options: &super::RunOptions,
) -> Result<Option<Arc<dyn egress::approval::Approver>>, String> {
    use crate::supervise::{broker, control, Broker, CONTROL_SOCKET, EVENTS};
    let asks = policy.default == egress::policy::Unmatched::Ask;
    if !asks && !policy.routes.iter().any(|r| r.approve) {
        return Ok(None);
    }
    let timeout = std::env::var("BOTTLE_APPROVE_TIMEOUT")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .map_or(broker::DEFAULT_TIMEOUT, std::time::Duration::from_secs);
    let broker = Arc::new(Broker::new(
        &run.record.name,
        timeout,
        Some(run.file(EVENTS)),
        options.approved_file.clone(),
        policy.routes.clone(),
    ));
    let listener = tokio::net::UnixListener::bind(run.file(CONTROL_SOCKET))
        .map_err(|e| format!("binding the control socket: {e}"))?;
    let served = broker.clone();
    supervisor.task(
        "the supervise control socket",
        Role::BestEffort,
        async move { control::serve(listener, served).await },
    );
    Ok(Some(broker))
}
