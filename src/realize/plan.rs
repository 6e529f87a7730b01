//! The `Plan`: every concrete input a run needs — kernel, boot image, rootfs,
//! machine size, the agent's command and user, the sidecars with their guest
//! ports and policies, and the guest network — and nothing else. `bottle run`
//! realizes a Plan; how the Plan was made (a built recipe's store paths, or a
//! small TOML spec for tests and bring-up) is not the realizer's business.
use miette::Diagnostic;
use serde::{Deserialize, Serialize};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// A run, fully decided.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// The bottle's name (a slug); the run's name unless one is given.
    pub name: String,
    /// The guest kernel; `None` takes the kit's (see `realize::kit`).
    pub kernel: Option<PathBuf>,
    /// A ready boot image; `None` has bottle build one from `rootfs`.
    pub initramfs: Option<PathBuf>,
    /// The guest's root file system: a directory or an uncompressed `.tar`.
    pub rootfs: PathBuf,
    /// A root disk image (erofs, from the store) the guest mounts read-only
    /// under a tmpfs overlay; when set, `rootfs` is not packed into the
    /// initramfs.
    #[serde(default)]
    pub root_disk: Option<PathBuf>,
    pub cpus: u32,
    /// Guest memory in MiB.
    pub memory_mib: u32,
    /// The agent's command and arguments.
    pub command: Vec<String>,
    /// A user in the rootfs's `/etc/passwd`, or `uid[:gid]`.
    pub user: String,
    /// The command's working directory; empty means the user's home.
    pub workdir: String,
    /// Extra environment for the command, in order.
    pub env: Vec<(String, String)>,
    pub sidecars: Vec<Sidecar>,
    pub network: Network,
}

/// A host-side service the guest may reach, at `proxy.internal:<guest_port>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sidecar {
    pub name: String,
    pub guest_port: u16,
    pub kind: SidecarKind,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum SidecarKind {
    /// The egress proxy, run inside `bottle run` with this policy file.
    Egress { policy: PathBuf },
    /// A sidecar another process already serves on this Unix socket.
    Socket { path: PathBuf },
}

/// The guest network as gvproxy serves it. gvproxy 0.8.1 fixes these values;
/// they are here so versions that take a config file get them from the Plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Network {
    pub subnet: String,
    /// The gateway: DHCP and DNS server.
    pub gateway: Ipv4Addr,
    /// The address gvproxy translates to its own loopback, where bottle's
    /// sidecar listeners are the only open ports.
    pub host: Ipv4Addr,
    /// The name the guest uses for the sidecars.
    pub sidecar_name: String,
}

impl Default for Network {
    fn default() -> Network {
        Network {
            subnet: "192.168.127.0/24".into(),
            gateway: Ipv4Addr::new(192, 168, 127, 1),
            host: Ipv4Addr::new(192, 168, 127, 254),
            sidecar_name: "proxy.internal".into(),
        }
    }
}

impl Plan {
    /// The egress sidecar, if the plan has one.
    pub fn egress(&self) -> Option<&Sidecar> {
        self.sidecars
            .iter()
            .find(|s| matches!(s.kind, SidecarKind::Egress { .. }))
    }

    /// The command's environment: the plan's, after the proxy variables that
    /// point HTTP clients at the egress sidecar.
    pub fn guest_env(&self) -> Vec<(String, String)> {
        let mut env = Vec::new();
        if let Some(egress) = self.egress() {
            let proxy = format!("http://{}:{}", self.network.sidecar_name, egress.guest_port);
            for key in ["HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"] {
                env.push((key.to_string(), proxy.clone()));
            }
            for key in ["NO_PROXY", "no_proxy"] {
                env.push((key.to_string(), "localhost,127.0.0.1".to_string()));
            }
        }
        env.extend(self.env.iter().cloned());
        env
    }

    /// Check what the realizer relies on, before anything starts.
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
        if self.cpus == 0 || self.memory_mib < 128 {
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

/// A Plan that cannot be run.
#[derive(Debug, Error, Diagnostic)]
pub enum PlanError {
    #[error("`{name}` is not a usable bottle name")]
    #[diagnostic(help("use letters, digits, `-` and `_`"))]
    BadName { name: String },
    #[error("the plan has no command to run")]
    #[diagnostic(help("give one after `--`, e.g. `bottle run plan.toml -- sh`"))]
    NoCommand,
    #[error("a VM with {cpus} cpus and {memory_mib} MiB cannot boot")]
    #[diagnostic(help("give at least 1 cpu and 128 MiB"))]
    TooSmall { cpus: u32, memory_mib: u32 },
    #[error("guest port {port} is used twice (or is 0)")]
    #[diagnostic(help("give every sidecar its own port between 1 and 65535"))]
    PortTwice { port: u16 },
    #[error("the bottle needs the `{name}` sidecar, which this version of bottle cannot run yet")]
    #[diagnostic(help("remove what asks for it from the recipe (`git` remotes need `git-gate`)"))]
    SidecarNotAvailable { name: String },
    #[error("the bottle's manifest is not usable: {reason}")]
    #[diagnostic(help("rebuild the bottle with this version of bottle"))]
    Manifest { reason: String },
    #[error("cannot read the plan {path}: {reason}")]
    #[diagnostic(help(
        "a plan spec is TOML: name, rootfs, command, and [[sidecar]] tables; see docs/run.md"
    ))]
    Spec { path: PathBuf, reason: String },
}

/// The TOML spec `bottle run` takes until recipes are wired to the build
/// output: paths are relative to the spec file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PlanSpec {
    name: String,
    rootfs: PathBuf,
    kernel: Option<PathBuf>,
    initramfs: Option<PathBuf>,
    #[serde(default = "one")]
    cpus: u32,
    #[serde(default = "default_memory")]
    memory: u32,
    #[serde(default)]
    command: Vec<String>,
    #[serde(default)]
    user: String,
    #[serde(default)]
    workdir: String,
    #[serde(default)]
    env: toml::Table,
    #[serde(default)]
    sidecar: Vec<SidecarSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SidecarSpec {
    name: String,
    port: u16,
    kind: String,
    policy: Option<PathBuf>,
    socket: Option<PathBuf>,
}

fn one() -> u32 {
    1
}

fn default_memory() -> u32 {
    512
}

impl Plan {
    /// The plan for a built bottle: its manifest's agent, machine size,
    /// network and sidecars (policies read from `store`), booting `rootfs`.
    pub fn from_manifest(
        manifest: &crate::lower::bottle::Manifest,
        store: &Path,
        rootfs: PathBuf,
    ) -> Result<Plan, PlanError> {
        // Guest files are in the root image, or (busybox) copied into the
        // assembled root by the caller.
        let mut sidecars = Vec::new();
        for (name, &guest_port) in &manifest.sidecars {
            let kind = match name.as_str() {
                "egress" => {
                    let policy = manifest.output(store, "egress.yaml").ok_or_else(|| {
                        PlanError::Manifest {
                            reason: "it has an egress sidecar but no `egress.yaml` output".into(),
                        }
                    })?;
                    SidecarKind::Egress { policy }
                }
                _ => return Err(PlanError::SidecarNotAvailable { name: name.clone() }),
            };
            sidecars.push(Sidecar {
                name: name.clone(),
                guest_port,
                kind,
            });
        }
        let address = |what: &str, text: &str| {
            text.parse::<Ipv4Addr>().map_err(|_| PlanError::Manifest {
                reason: format!("its {what} `{text}` is not an IPv4 address"),
            })
        };
        let network = Network {
            subnet: manifest.network.subnet.clone(),
            gateway: address("gateway", &manifest.network.gateway_ip)?,
            host: address("proxy address", &manifest.network.proxy_ip)?,
            sidecar_name: crate::lower::network::PROXY_HOST.into(),
        };
        Ok(Plan {
            name: manifest.name.clone(),
            kernel: None,
            initramfs: None,
            rootfs,
            root_disk: None,
            cpus: manifest.cpus,
            memory_mib: manifest.memory,
            command: manifest.agent.command.clone(),
            user: manifest.agent.user.clone(),
            workdir: manifest.agent.workdir.clone(),
            env: manifest.env.clone(),
            sidecars,
            network,
        })
    }

    /// Read a plan spec (TOML) from `path`.
    pub fn from_spec_file(path: &Path) -> Result<Plan, PlanError> {
        let error = |reason: String| PlanError::Spec {
            path: path.into(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|e| error(e.to_string()))?;
        let spec: PlanSpec = toml::from_str(&text).map_err(|e| error(e.to_string()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        let resolve = |p: PathBuf| if p.is_absolute() { p } else { base.join(p) };
        let mut sidecars = Vec::new();
        for s in spec.sidecar {
            let kind = match (s.kind.as_str(), s.policy, s.socket) {
                ("egress", Some(policy), None) => SidecarKind::Egress { policy: resolve(policy) },
                ("socket", None, Some(socket)) => SidecarKind::Socket { path: resolve(socket) },
                (kind, _, _) => {
                    return Err(error(format!(
                        "sidecar `{}`: kind `{kind}` needs `policy` (egress) or `socket` (socket), not both",
                        s.name
                    )))
                }
            };
            sidecars.push(Sidecar {
                name: s.name,
                guest_port: s.port,
                kind,
            });
        }
        let env = spec
            .env
            .into_iter()
            .map(|(k, v)| match v {
                toml::Value::String(s) => Ok((k, s)),
                other => Err(error(format!(
                    "env `{k}` must be a string, not {}",
                    other.type_str()
                ))),
            })
            .collect::<Result<_, _>>()?;
        Ok(Plan {
            name: spec.name,
            kernel: spec.kernel.map(resolve),
            initramfs: spec.initramfs.map(resolve),
            rootfs: resolve(spec.rootfs),
            root_disk: None,
            cpus: spec.cpus,
            memory_mib: spec.memory,
            command: spec.command,
            user: spec.user,
            workdir: spec.workdir,
            env,
            sidecars,
            network: Network::default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_paths_are_relative_to_the_spec() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plan.toml");
        std::fs::write(
            &path,
            "name = \"t\"\nrootfs = \"root\"\ncommand = [\"true\"]\n[env]\nA = \"b\"\n\
             [[sidecar]]\nname = \"egress\"\nport = 3128\nkind = \"egress\"\npolicy = \"egress.yaml\"\n",
        )
        .unwrap();
        let plan = Plan::from_spec_file(&path).unwrap();
        assert_eq!(plan.rootfs, dir.path().join("root"));
        assert_eq!(
            plan.sidecars[0].kind,
            SidecarKind::Egress {
                policy: dir.path().join("egress.yaml")
            }
        );
        plan.validate().unwrap();
        let env = plan.guest_env();
        assert!(env.contains(&("HTTPS_PROXY".into(), "http://proxy.internal:3128".into())));
        assert_eq!(env.last().unwrap(), &("A".to_string(), "b".to_string()));
    }

    #[test]
    fn duplicate_ports_are_refused() {
        let sidecar = |name: &str| Sidecar {
            name: name.into(),
            guest_port: 3128,
            kind: SidecarKind::Socket { path: "/x".into() },
        };
        let plan = Plan {
            name: "t".into(),
            kernel: None,
            initramfs: None,
            rootfs: "/".into(),
            root_disk: None,
            cpus: 1,
            memory_mib: 256,
            command: vec!["true".into()],
            user: String::new(),
            workdir: String::new(),
            env: vec![],
            sidecars: vec![sidecar("a"), sidecar("b")],
            network: Network::default(),
        };
        assert!(matches!(
            plan.validate(),
            Err(PlanError::PortTwice { port: 3128 })
        ));
    }
}
