//! `bottle doctor`: is this host ready to run bottles? Each dependency found
//! or not, with its version and path, whether KVM really works (a bounded
//! boot probe, not just "/dev/kvm exists"), and a one-line fix per problem.
use crate::realize::kit::{self, FIX_GVPROXY, FIX_KERNEL, FIX_QEMU};
use crate::realize::{guest, parts, rundir, vmm};
use clap::Args;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

/// Check qemu, gvproxy, the guest kernel, KVM and namespaces on this host.
#[derive(Args)]
pub struct DoctorArgs {
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// One check's outcome.
#[derive(Debug, Serialize)]
pub struct Check {
    pub name: &'static str,
    /// "ok", "warn" (works, but not at its best) or "fail".
    pub status: &'static str,
    pub version: Option<String>,
    pub path: Option<PathBuf>,
    pub detail: String,
    pub fix: Option<String>,
}

impl Check {
    fn ok(
        name: &'static str,
        version: Option<String>,
        path: Option<PathBuf>,
        detail: String,
    ) -> Check {
        Check {
            name,
            status: "ok",
            version,
            path,
            detail,
            fix: None,
        }
    }
    fn fail(name: &'static str, detail: String, fix: &str) -> Check {
        Check {
            name,
            status: "fail",
            version: None,
            path: None,
            detail,
            fix: Some(fix.into()),
        }
    }
}

pub fn run(args: DoctorArgs) -> miette::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| miette::miette!("cannot start the async runtime: {e}"))?;
    let checks = runtime.block_on(checks());
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&checks).expect("checks serialize")
        );
    } else {
        for c in &checks {
            let version = c
                .version
                .as_deref()
                .map(|v| format!(" {v}"))
                .unwrap_or_default();
            let path = c
                .path
                .as_ref()
                .map(|p| format!(" ({})", p.display()))
                .unwrap_or_default();
            println!("{:<5} {}{version}{path}: {}", c.status, c.name, c.detail);
            if let Some(fix) = &c.fix {
                println!("      fix: {fix}");
            }
        }
    }
    let failed = checks.iter().any(|c| c.status == "fail");
    Ok(if failed {
        ExitCode::from(crate::cli::EXIT_FAILURE)
    } else {
        ExitCode::SUCCESS
    })
}

async fn version_of(program: &Path, flag: &str) -> Option<String> {
    let mut command = tokio::process::Command::new(program);
    command.arg(flag);
    let output = parts::run_bounded(command, Duration::from_secs(5))
        .await
        .ok()??;
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    let line = text.lines().next()?.to_string();
    line.split_whitespace()
        .find(|w| {
            w.trim_start_matches('v')
                .starts_with(|c: char| c.is_ascii_digit())
        })
        .map(|w| w.trim_end_matches(',').to_string())
}

async fn checks() -> Vec<Check> {
    let mut checks = Vec::new();
    let qemu = match kit::find_qemu() {
        Ok(path) => {
            let version = version_of(&path, "-version").await;
            checks.push(Check::ok(
                "qemu",
                version,
                Some(path.clone()),
                "found".into(),
            ));
            Some(path)
        }
        Err(e) => {
            checks.push(Check::fail("qemu", e.to_string(), FIX_QEMU));
            None
        }
    };
    match kit::find_gvproxy() {
        Ok(path) => {
            let version = version_of(&path, "-version").await;
            let parsed = version
                .as_deref()
                .and_then(crate::realize::gvproxy::Version::parse);
            let check = match parsed {
                Some(v) => {
                    // What this version can apply of the network every bottle stores.
                    use crate::lower::{gvproxy::GvproxyConfig, network::Network};
                    let config = GvproxyConfig::for_network(&Network::standard());
                    let sockets = crate::realize::gvproxy::Sockets {
                        api: "api.sock".into(),
                        qemu: "qemu.sock".into(),
                    };
                    let t = crate::realize::gvproxy::translate(
                        v,
                        &config,
                        &sockets,
                        std::path::Path::new("gvproxy.yaml"),
                    );
                    let how = if t.config_file.is_some() {
                        "the stored gvproxy.yaml as its -config file".to_string()
                    } else {
                        format!(
                            "no config file: the stored gvproxy.yaml becomes flags ({}) and {} API call(s)",
                            t.args.iter().filter(|a| a.starts_with('-')).cloned().collect::<Vec<_>>().join(" "),
                            t.api_calls.len()
                        )
                    };
                    if t.unapplied.is_empty() {
                        Check::ok(
                            "gvproxy",
                            version,
                            Some(path),
                            format!("{how}; every stored setting applies"),
                        )
                    } else {
                        let list: Vec<String> = t.unapplied.iter().map(|u| u.to_string()).collect();
                        let mut c = Check::ok(
                            "gvproxy",
                            version,
                            Some(path),
                            format!("{how}; cannot apply: {}", list.join("; ")),
                        );
                        c.status = "warn";
                        c
                    }
                }
                None => Check::ok(
                    "gvproxy",
                    version,
                    Some(path),
                    "found, but `-version` gave no version".to_string(),
                ),
            };
            checks.push(check);
        }
        Err(e) => checks.push(Check::fail("gvproxy", e.to_string(), FIX_GVPROXY)),
    }
    let kernel = match kit::find_kernel() {
        Ok(path) => {
            let version = std::fs::read_to_string(kit::kit_dir().join("kernel/version"))
                .ok()
                .map(|v| v.trim().to_string());
            checks.push(Check::ok(
                "guest kernel",
                version,
                Some(path.clone()),
                "found".into(),
            ));
            Some(path)
        }
        Err(e) => {
            checks.push(Check::fail("guest kernel", e.to_string(), FIX_KERNEL));
            None
        }
    };
    match kit::Kit::locate().and_then(|k| k.module_files(guest::MODULES)) {
        Ok(files) => checks.push(Check::ok(
            "guest modules",
            None,
            kit::find_modules().ok(),
            format!("{} virtio modules for the boot image", files.len()),
        )),
        Err(e) => checks.push(Check::fail("guest modules", e.to_string(), FIX_KERNEL)),
    }
    let init = guest::init_binary();
    if init.is_empty() {
        checks.push(Check::fail(
            "guest init",
            "not built into this bottle".into(),
            "build bottle on x86_64 Linux",
        ));
    } else {
        checks.push(Check::ok(
            "guest init",
            None,
            None,
            format!("embedded, {} KiB, static", init.len() / 1024),
        ));
    }
    checks.push(match (qemu, kernel) {
        (Some(qemu), Some(kernel)) => kvm_check(vmm::probe_kvm(&qemu, &kernel).await),
        _ => Check {
            name: "kvm",
            status: "warn",
            version: None,
            path: None,
            detail: "not probed: qemu or the kernel is missing".into(),
            fix: Some("fix the failures above, then run bottle doctor again".into()),
        },
    });
    checks.push(namespace_check());
    let root = rundir::runs_root();
    let writable = std::fs::create_dir_all(&root).is_ok() && tempfile::tempdir_in(&root).is_ok();
    checks.push(if writable {
        Check::ok("run directory", None, Some(root), "writable".into())
    } else {
        Check::fail(
            "run directory",
            format!("{} is not writable", root.display()),
            "set BOTTLE_RUNTIME_DIR to a writable directory",
        )
    });
    checks
}

fn kvm_check(probe: vmm::KvmProbe) -> Check {
    let warn = |detail: String, fix: &str| Check {
        name: "kvm",
        status: "warn",
        version: None,
        path: Some("/dev/kvm".into()),
        detail,
        fix: Some(fix.into()),
    };
    match probe {
        vmm::KvmProbe::Works { millis } => {
            Check::ok("kvm", None, Some("/dev/kvm".into()), format!("works: a guest kernel booted in {millis} ms"))
        }
        vmm::KvmProbe::NoDevice { reason } => warn(
            format!("unusable ({reason}); VMs run under TCG, slowly"),
            "enable virtualization (or nested virtualization) for this host and load kvm_intel/kvm_amd",
        ),
        vmm::KvmProbe::Refused { reason } if reason.contains("ermission") => warn(
            format!("qemu may not use KVM ({reason}); VMs run under TCG, slowly"),
            "add this user to the kvm group (or make /dev/kvm accessible)",
        ),
        vmm::KvmProbe::Refused { reason } => warn(
            format!("qemu fails under KVM here ({reason}); VMs run under TCG, slowly"),
            "use a host with working (nested) virtualization for KVM speed; TCG works meanwhile",
        ),
        vmm::KvmProbe::Hangs { seconds } => warn(
            format!("/dev/kvm opens but a guest made no progress in {seconds} s (broken nested virtualization); VMs run under TCG"),
            "use a host with working (nested) virtualization for KVM speed; TCG works meanwhile",
        ),
    }
}

fn namespace_check() -> Check {
    if nix::unistd::geteuid().is_root() {
        return Check::ok(
            "namespaces",
            None,
            None,
            "root: gvproxy gets network and mount namespaces directly".into(),
        );
    }
    let allowed = std::fs::read_to_string("/proc/sys/kernel/unprivileged_userns_clone")
        .map(|v| v.trim() != "0")
        .unwrap_or(true);
    let restricted =
        std::fs::read_to_string("/proc/sys/kernel/apparmor_restrict_unprivileged_userns")
            .map(|v| v.trim() == "1")
            .unwrap_or(false);
    if allowed && !restricted {
        Check::ok(
            "namespaces",
            None,
            None,
            "rootless: gvproxy's namespaces go inside a user namespace".into(),
        )
    } else {
        Check::fail(
            "namespaces",
            "unprivileged user namespaces are disabled, so rootless runs cannot contain gvproxy".into(),
            "run as root, or allow them: sysctl kernel.unprivileged_userns_clone=1 (or lift AppArmor's userns restriction)",
        )
    }
}
