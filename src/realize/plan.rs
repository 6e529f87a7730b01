//! The `Plan`: a built bottle as the realizer reads it from the store — the
//! agent and the VM's size from `smolfile.toml`, the network from
//! `gvproxy.yaml`, the sidecars from `ports.json` and their policies, the
//! image from `manifest.json` — and nothing else. Lowering decided every
//! value here; the realizer only adds run-time facts (sockets, pids, the run
//! directory), so the same store path starts the same VM on any machine.
use crate::lower::bottle::{Manifest, ManifestImage};
use crate::lower::gvproxy::GvproxyConfig;
use crate::lower::network::Network;
use crate::lower::smolfile::Smolfile;
use crate::schema::{MIN_CPUS, MIN_MEMORY};
use miette::Diagnostic;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// A run, fully decided.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The bottle's name (a slug); the run's name unless one is given.
    pub name: String,
    pub image: ManifestImage,
    /// The agent's command and arguments.
    pub command: Vec<String>,
    /// A user in the root file system's `/etc/passwd`, or `uid[:gid]`.
    pub user: String,
    /// The command's working directory; empty means the user's home.
    pub workdir: String,
    /// The command's whole environment as `KEY=VALUE`, in order.
    pub env: Vec<String>,
    pub cpus: u32,
    /// Guest memory in MiB.
    pub memory_mib: u32,
    pub sidecars: Vec<Sidecar>,
    pub network: Network,
    /// The stored gvproxy configuration `network` was read from.
    pub gvproxy: GvproxyConfig,
}

/// A host-side service the guest may reach, at `proxy.internal:<guest_port>`.
#[derive(Debug, Clone, PartialEq)]
pub struct Sidecar {
    pub name: String,
    pub guest_port: u16,
    pub kind: SidecarKind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum SidecarKind {
    /// The egress proxy, run inside `bottle run` with this policy file.
    Egress { policy: PathBuf },
    /// The git gate, run inside `bottle run` with this policy (`git-gate.toml`).
    GitGate {
        policy: PathBuf,
        gate: crate::sidecar::git_gate::Policy,
    },
}

impl Plan {
    /// Read the built bottle at `bottle_dir` whose outputs are in `store`.
    pub fn load(store: &Path, bottle_dir: &Path) -> miette::Result<Plan> {
        let manifest = Manifest::load(bottle_dir)?;
        Ok(Plan::from_manifest(&manifest, store)?)
    }

    /// The plan of a loaded manifest: its outputs are read from `store`.
    pub fn from_manifest(manifest: &Manifest, store: &Path) -> Result<Plan, PlanError> {
        // Guest files are in the root image, or (busybox) copied into the
        // assembled root by `bottle run`.
        let output = |link: &str| {
            manifest
                .output(store, link)
                .ok_or_else(|| PlanError::Manifest {
                    reason: format!("it has no `{link}` output"),
                })
        };
        let unreadable = |link: &str| {
            let link = link.to_string();
            move |reason: String| PlanError::Output { link, reason }
        };
        let smolfile =
            Smolfile::load(&output("smolfile.toml")?).map_err(unreadable("smolfile.toml"))?;
        let gvproxy =
            GvproxyConfig::load(&output("gvproxy.yaml")?).map_err(unreadable("gvproxy.yaml"))?;
        let network = gvproxy.network().map_err(unreadable("gvproxy.yaml"))?;
        let ports =
            crate::lower::ports::load(&output("ports.json")?).map_err(unreadable("ports.json"))?;
        let mut sidecars = Vec::new();
        for (name, &guest_port) in &ports {
            let kind = match name.as_str() {
                "egress" => SidecarKind::Egress {
                    policy: output("egress.yaml")?,
                },
                "git-gate" => {
                    let policy = output("git-gate.toml")?;
                    let gate = crate::sidecar::git_gate::Policy::load(&policy)
                        .map_err(unreadable("git-gate.toml"))?;
                    SidecarKind::GitGate { policy, gate }
                }
                _ => return Err(PlanError::SidecarNotAvailable { name: name.clone() }),
            };
            sidecars.push(Sidecar {
                name: name.clone(),
                guest_port,
                kind,
            });
        }
        let plan = Plan {
            name: manifest.name.clone(),
            image: manifest.image.clone(),
            command: smolfile.command(),
            user: smolfile.user,
            workdir: smolfile.workdir,
            env: smolfile.env,
            cpus: smolfile.cpus,
            memory_mib: smolfile.memory,
            sidecars,
            network,
            gvproxy,
        };
        plan.validate()?;
        Ok(plan)
    }

    /// The egress sidecar, if the plan has one.
    pub fn egress(&self) -> Option<&Sidecar> {
        self.sidecars
            .iter()
            .find(|s| matches!(s.kind, SidecarKind::Egress { .. }))
    }

    /// Check what the realizer relies on, before anything starts. A bottle
    /// built by this version always passes: the checker refuses the same.
    pub fn validate(&self) -> Result<(), PlanError> {
        if self.name.is_empty()
            || !self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(PlanError::BadName {
                name: self.name.clone(),
            });
        }
        if self.command.is_empty() {
            return Err(PlanError::NoCommand);
        }
        if self.cpus < MIN_CPUS || self.memory_mib < MIN_MEMORY {
            return Err(PlanError::TooSmall {
                cpus: self.cpus,
                memory_mib: self.memory_mib,
            });
        }
        let mut ports: Vec<u16> = self.sidecars.iter().map(|s| s.guest_port).collect();
        ports.sort_unstable();
        if let Some(w) = ports.windows(2).find(|w| w[0] == w[1]) {
            return Err(PlanError::PortTwice { port: w[0] });
        }
        if ports.contains(&0) {
            return Err(PlanError::PortTwice { port: 0 });
        }
        Ok(())
    }
}

/// A built bottle that cannot be run.
#[derive(Debug, Error, Diagnostic)]
pub enum PlanError {
    #[error("`{name}` is not a usable bottle name")]
    #[diagnostic(help("use letters, digits, `-` and `_`"))]
    BadName { name: String },
    #[error("the bottle has no command to run")]
    #[diagnostic(help("give one after `--`, e.g. `bottle run result -- sh`"))]
    NoCommand,
    #[error("a VM with {cpus} cpus and {memory_mib} MiB cannot boot")]
    #[diagnostic(help("rebuild it: the recipe checker says what the minimums are"))]
    TooSmall { cpus: u32, memory_mib: u32 },
    #[error("guest port {port} is used twice (or is 0)")]
    #[diagnostic(help("give every sidecar its own port between 1 and 65535"))]
    PortTwice { port: u16 },
    #[error("the bottle needs the `{name}` sidecar, which this version of bottle cannot run yet")]
    #[diagnostic(help(
        "rebuild it with this version of bottle, whose checker says what to remove"
    ))]
    SidecarNotAvailable { name: String },
    #[error("the bottle's manifest is not usable: {reason}")]
    #[diagnostic(help("rebuild the bottle with this version of bottle"))]
    Manifest { reason: String },
    #[error("the bottle's `{link}` is not usable: {reason}")]
    #[diagnostic(help(
        "`bottle store verify` checks the store; rebuild the bottle with this version of bottle"
    ))]
    Output { link: String, reason: String },
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> Plan {
        Plan {
            name: "t".into(),
            image: ManifestImage::Busybox,
            command: vec!["true".into()],
            user: String::new(),
            workdir: String::new(),
            env: vec![],
            cpus: 1,
            memory_mib: 256,
            sidecars: vec![],
            network: Network::standard(),
            gvproxy: GvproxyConfig::for_network(&Network::standard()),
        }
    }

    #[test]
    fn duplicate_ports_and_small_machines_are_refused() {
        let sidecar = |name: &str| Sidecar {
            name: name.into(),
            guest_port: 3128,
            kind: SidecarKind::Egress {
                policy: "/x".into(),
            },
        };
        let mut two = plan();
        two.sidecars = vec![sidecar("a"), sidecar("b")];
        assert!(matches!(
            two.validate(),
            Err(PlanError::PortTwice { port: 3128 })
        ));
        let mut small = plan();
        small.memory_mib = MIN_MEMORY - 1;
        assert!(matches!(small.validate(), Err(PlanError::TooSmall { .. })));
        plan().validate().unwrap();
    }
}
