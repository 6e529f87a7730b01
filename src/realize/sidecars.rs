//! Starting a plan's sidecars, each on a Unix socket in the run directory.
//! The egress proxy runs inside `bottle run` itself (`crate::sidecar::egress`);
//! a `socket` sidecar is served by some other process and only checked.
use super::plan::{Plan, SidecarKind};
use super::rundir::RunDir;
use super::RunError;
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
    tasks: &mut tokio::task::JoinSet<Result<(), String>>,
) -> Result<Vec<Running>, RunError> {
    let mut running = Vec::new();
    for sidecar in &plan.sidecars {
        let failed = |reason: String, help: &str| RunError::Start {
            part: format!("sidecar `{}`", sidecar.name),
            reason,
            help: help.into(),
        };
        let (socket, ca_certificate) = match &sidecar.kind {
            SidecarKind::Socket { path } => {
                if tokio::net::UnixStream::connect(path).await.is_err() {
                    return Err(failed(
                        format!("nothing accepts connections on {}", path.display()),
                        "start the sidecar first, or fix `socket` in the plan",
                    ));
                }
                (path.clone(), None)
            }
            SidecarKind::Egress { policy } => {
                let _ = (policy, tasks);
                return Err(failed(
                    "the egress proxy is not part of this build yet".into(),
                    "use a `socket` sidecar for now",
                ));
            }
        };
        let _ = run;
        running.push(Running {
            name: sidecar.name.clone(),
            guest_port: sidecar.guest_port,
            socket,
            ca_certificate,
        });
    }
    Ok(running)
}
