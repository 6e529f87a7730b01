//! What a run hands its parts: gvproxy's arguments and API calls, the frame
//! filter's rules, the guest's spec and qemu's arguments — one pure function
//! of the [`Plan`] and the run's facts (the run directory, the kernel, the
//! accelerator, the installed gvproxy's version, the user's terminal, the
//! sidecars' CA). Nothing here reads the recipe, the clock or the disk, so
//! the same store path gives the same launch on any machine; the tests pin
//! it with golden files.
use super::firewall::Rules;
use super::guest::spec::GuestSpec;
use super::gvproxy::{self, Sockets, Translation, Version};
use super::plan::{Plan, Sidecar, SidecarKind};
use super::vmm::{qemu, Accel};
use crate::lower::network::PROXY_HOST;
use std::path::{Path, PathBuf};

/// What a run knows beyond its Plan.
pub struct Facts<'a> {
    pub run_dir: &'a Path,
    pub kernel: &'a Path,
    pub accel: Accel,
    pub gvproxy: Version,
    /// `bottle.tty=1`, the terminal's size and type, for the guest init.
    pub guest_params: Vec<String>,
    /// PEM certificates the guest must trust (the egress proxy's CA).
    pub ca_certificates: Vec<String>,
    /// The root image on this host (a store path), attached read-only.
    pub root_disk: Option<&'a Path>,
}

/// Files of a run directory, by role.
pub mod files {
    pub const GVPROXY_API: &str = "gvproxy.sock";
    pub const GVPROXY_QEMU: &str = "gvproxy-qemu.sock";
    pub const GVPROXY_CONFIG: &str = "gvproxy.yaml";
    pub const VM_NETWORK: &str = "vm-net.sock";
    pub const BOOT_IMAGE: &str = "initrd.cpio";
    pub const CONSOLE: &str = "guest.log";
    pub const STATUS: &str = "status";
    pub const CONTROL: &str = "control.sock";
}

pub struct Launch {
    /// The sidecars, each started with its stored policy.
    pub sidecars: Vec<Sidecar>,
    pub gvproxy: Translation,
    pub gvproxy_sockets: Sockets,
    pub firewall: Rules,
    pub guest: GuestSpec,
    pub qemu: Vec<std::ffi::OsString>,
}

pub fn launch(plan: &Plan, facts: &Facts<'_>) -> Launch {
    let file = |name: &str| -> PathBuf { facts.run_dir.join(name) };
    let gvproxy_sockets = Sockets {
        api: file(files::GVPROXY_API),
        qemu: file(files::GVPROXY_QEMU),
    };
    let translation = gvproxy::translate(
        facts.gvproxy,
        &plan.gvproxy,
        &gvproxy_sockets,
        &file(files::GVPROXY_CONFIG),
    );
    let firewall = Rules {
        gateway: plan.network.gateway,
        host: plan.network.sidecar_host,
        ports: plan.sidecars.iter().map(|s| s.guest_port).collect(),
    };
    let guest = guest_spec(plan, facts.ca_certificates.clone());
    let (initramfs, network, console_log, status, control) = (
        file(files::BOOT_IMAGE),
        file(files::VM_NETWORK),
        file(files::CONSOLE),
        file(files::STATUS),
        file(files::CONTROL),
    );
    let qemu = qemu::args(&qemu::Machine {
        accel: facts.accel,
        cpus: plan.cpus,
        memory_mib: plan.memory_mib,
        kernel: facts.kernel,
        initramfs: &initramfs,
        network: &network,
        mac: plan.network.guest_mac,
        console_log: &console_log,
        status: &status,
        control: &control,
        guest_params: {
            let mut params = facts.guest_params.clone();
            if facts.root_disk.is_some() {
                params.push(format!("bottle.root={}", super::guest::ROOT_DEVICE));
            }
            params
        },
        root_disk: facts.root_disk,
    });
    Launch {
        sidecars: plan.sidecars.clone(),
        gvproxy: translation,
        gvproxy_sockets,
        firewall,
        guest,
        qemu,
    }
}

/// What the guest init is told: the agent as stored, the sidecars' name,
/// and the CAs to trust.
pub fn guest_spec(plan: &Plan, ca_certificates: Vec<String>) -> GuestSpec {
    GuestSpec {
        user: plan.user.clone(),
        workdir: plan.workdir.clone(),
        command: git_checkout(plan),
        env: plan.env.clone(),
        hosts: vec![(plan.network.sidecar_host.to_string(), PROXY_HOST.into())],
        hostname: plan.name.clone(),
        ca_certificates,
    }
}

/// The agent's command, preceded by the git gate's checkout when the bottle
/// has remotes (`crate::sidecar::git_gate::guest`).
fn git_checkout(plan: &Plan) -> Vec<String> {
    plan.sidecars
        .iter()
        .find_map(|s| match &s.kind {
            SidecarKind::GitGate { gate, .. } => Some(crate::sidecar::git_gate::guest::wrap(
                gate,
                PROXY_HOST,
                s.guest_port,
                &plan.command,
            )),
            _ => None,
        })
        .unwrap_or_else(|| plan.command.clone())
}

impl Launch {
    /// The launch as data, for `bottle run --verbose` and golden tests.
    pub fn describe(&self) -> serde_json::Value {
        let qemu: Vec<String> = self
            .qemu
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let sidecars: Vec<_> = self
            .sidecars
            .iter()
            .map(|s| match &s.kind {
                SidecarKind::Egress { policy } | SidecarKind::GitGate { policy, .. } => {
                    serde_json::json!({
                        "name": s.name, "guest_port": s.guest_port, "policy": policy.display().to_string(),
                    })
                }
            })
            .collect();
        serde_json::json!({
            "sidecars": sidecars,
            "gvproxy": self.gvproxy,
            "firewall": {
                "gateway": self.firewall.gateway.to_string(),
                "sidecar_host": self.firewall.host.to_string(),
                "ports": self.firewall.ports,
            },
            // Each run has its own CA: named, not shown.
            "guest": GuestSpec {
                ca_certificates: (1..=self.guest.ca_certificates.len())
                    .map(|n| format!("<this run's CA #{n}>"))
                    .collect(),
                ..self.guest.clone()
            }
            .encode(),
            "qemu": qemu,
        })
    }
}

#[cfg(test)]
mod git_checkout_tests {
    use super::*;
    use crate::lower::bottle::ManifestImage;
    use crate::lower::gvproxy::GvproxyConfig;
    use crate::lower::network::Network;
    use crate::sidecar::git_gate::{policy::default_identity, Policy, Remote};

    /// With remotes, the guest runs the checkout first, then the stored command.
    #[test]
    fn a_git_gate_wraps_the_command_with_the_checkout() {
        let remote = Remote {
            url: "/srv/repo".into(),
            fetch: crate::schema::all_refs(),
            push: vec![],
            force: false,
            delete: false,
            push_ask: false,
            checkout: Some("dev".into()),
            credentials: None,
        };
        let gate = Policy {
            version: 1,
            bottle: "t".into(),
            user: default_identity("t"),
            remotes: [("origin".to_string(), remote)].into(),
        };
        let mut plan = Plan {
            name: "t".into(),
            image: ManifestImage::Busybox,
            command: vec!["agent".into(), "--flag".into()],
            user: String::new(),
            workdir: String::new(),
            env: vec![],
            cpus: 1,
            memory_mib: 256,
            sidecars: vec![],
            network: Network::standard(),
            gvproxy: GvproxyConfig::for_network(&Network::standard()),
        };
        assert_eq!(guest_spec(&plan, vec![]).command, ["agent", "--flag"]);
        plan.sidecars.push(Sidecar {
            name: "git-gate".into(),
            guest_port: 3129,
            kind: SidecarKind::GitGate {
                policy: "/x".into(),
                gate,
            },
        });
        let command = guest_spec(&plan, vec![]).command;
        assert_eq!(command[..2], ["/bin/sh", "-c"]);
        assert!(command[2].contains(
            "git clone --quiet --origin 'origin' --branch 'dev' 'http://proxy.internal:3129/origin.git' ."
        ));
        assert!(command[2].ends_with("exec \"$@\"\n"));
        assert_eq!(command[4..], ["agent", "--flag"]);
    }
}
