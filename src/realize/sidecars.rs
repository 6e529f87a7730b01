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
    let log = run.file(super::RUN_LOG);
    // One broker for the run, when anything asks a person: an egress route
    // or default, or a git remote with `push-ask`.
    let mut policies = Vec::new();
    for sidecar in &plan.sidecars {
        if let SidecarKind::Egress { policy } = &sidecar.kind {
            policies.push(Policy::load(policy)?);
        }
    }
    let pushes_ask = plan.sidecars.iter().any(|s| match &s.kind {
        SidecarKind::GitGate { gate, .. } => gate.remotes.values().any(|r| r.push_ask),
        SidecarKind::Egress { .. } => false,
    });
    let broker = supervise(&policies, pushes_ask, run, supervisor, options)
        .await
        .map_err(|reason| RunError::Start {
            part: "the supervise control socket".into(),
            reason,
            help: "check that the run directory is writable".into(),
        })?;
    let mut policies = policies.into_iter();
    let mut running = Vec::new();
    for sidecar in &plan.sidecars {
        let failed = |reason: String, help: &str| RunError::Start {
            part: format!("sidecar `{}`", sidecar.name),
            reason,
            help: help.into(),
        };
        let (socket, ca_certificate) = match &sidecar.kind {
            SidecarKind::Egress { .. } => {
                let policy = policies.next().expect("one policy per egress sidecar");
                let approver = broker
                    .clone()
                    .map(|b| b as Arc<dyn egress::approval::Approver>);
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
                        ask: broker
                            .is_some()
                            .then(|| run.file(crate::supervise::CONTROL_SOCKET)),
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
        super::log_ready(&log, &sidecar.name, run.started);
        running.push(Running {
            name: sidecar.name.clone(),
            guest_port: sidecar.guest_port,
            socket,
            ca_certificate,
        });
    }
    Ok(running)
}

/// When anything asks a person (an egress route with `approve`, an egress
/// default of `ask`, a git remote with `push-ask`): the run's approval
/// broker and its control socket (`crate::supervise`), a best-effort part.
async fn supervise(
    policies: &[Policy],
    pushes_ask: bool,
    run: &RunDir,
    supervisor: &mut Supervisor,
    options: &super::RunOptions,
) -> Result<Option<Arc<crate::supervise::Broker>>, String> {
    use crate::supervise::{broker, control, Broker, CONTROL_SOCKET, EVENTS};
    let asks = policies.iter().any(|policy| {
        policy.default == egress::policy::Unmatched::Ask || policy.routes.iter().any(|r| r.approve)
    });
    if !asks && !pushes_ask {
        return Ok(None);
    }
    let timeout = std::env::var("BOTTLE_APPROVE_TIMEOUT")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .map_or(broker::DEFAULT_TIMEOUT, std::time::Duration::from_secs);
    // "Always" copies the asking route from the (one) egress policy.
    let routes = policies
        .first()
        .map(|p| p.routes.clone())
        .unwrap_or_default();
    let broker = Arc::new(Broker::new(
        &run.record.name,
        timeout,
        Some(run.file(EVENTS)),
        options.approved_file.clone(),
        routes,
    ));
    let listener = tokio::net::UnixListener::bind(run.file(CONTROL_SOCKET))
        .map_err(|e| format!("binding the control socket: {e}"))?;
    let served = broker.clone();
    supervisor.task(
        "the supervise control socket",
        Role::BestEffort,
        async move { control::serve(listener, served).await },
    );
    super::log_ready(&run.file(super::RUN_LOG), "supervise", run.started);
    Ok(Some(broker))
}
