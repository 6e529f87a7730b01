//! The virtual machine monitor. qemu is the engine today (`qemu`); this
//! module decides the accelerator: KVM only where a bounded probe shows a
//! guest actually makes progress under it (on some hosts `/dev/kvm` opens but
//! a guest never runs), TCG otherwise.
pub mod qemu;

use super::parts::run_bounded;
use std::path::Path;
use std::time::{Duration, Instant};

/// The accelerator a VM runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Accel {
    Kvm,
    Tcg,
}

/// What the KVM probe found.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "result", rename_all = "kebab-case")]
pub enum KvmProbe {
    /// A guest kernel booted to its end under KVM in this many milliseconds.
    Works { millis: u64 },
    /// `/dev/kvm` is missing or cannot be opened.
    NoDevice { reason: String },
    /// qemu refused KVM (its error line).
    Refused { reason: String },
    /// The guest made no progress within the time limit.
    Hangs { seconds: u64 },
}

/// How long a working KVM guest may take to boot to its end.
pub const PROBE_LIMIT: Duration = Duration::from_secs(8);

/// Boot `kernel` under KVM with no root file system: it panics and, with
/// `panic=-1` and `-no-reboot`, qemu exits. A guest that makes progress gets
/// there in well under a second; one that does not is killed at the limit.
pub async fn probe_kvm(qemu: &Path, kernel: &Path) -> KvmProbe {
    if let Err(e) = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
    {
        return KvmProbe::NoDevice {
            reason: e.to_string(),
        };
    }
    let mut command = tokio::process::Command::new(qemu);
    command.args([
        "-accel", "kvm", "-machine", "q35", "-cpu", "host", "-m", "128", "-smp", "1",
    ]);
    command.args([
        "-nodefaults",
        "-no-user-config",
        "-display",
        "none",
        "-no-reboot",
    ]);
    command.arg("-kernel").arg(kernel);
    command.args(["-append", "panic=-1 console=ttyS0 loglevel=0"]);
    let started = Instant::now();
    match run_bounded(command, PROBE_LIMIT).await {
        Ok(Some(output)) if output.status.success() => KvmProbe::Works {
            millis: started.elapsed().as_millis() as u64,
        },
        Ok(Some(output)) => {
            let text = String::from_utf8_lossy(&output.stderr);
            KvmProbe::Refused {
                reason: text.lines().last().unwrap_or("qemu failed").to_string(),
            }
        }
        Ok(None) => KvmProbe::Hangs {
            seconds: PROBE_LIMIT.as_secs(),
        },
        Err(e) => KvmProbe::Refused {
            reason: e.to_string(),
        },
    }
}

/// The accelerator for a run: the forced one, or KVM if the probe (cached
/// per host boot in `cache_dir`) shows it works, else TCG.
pub async fn choose(forced: Option<Accel>, qemu: &Path, kernel: &Path, cache_dir: &Path) -> Accel {
    if let Some(accel) = forced {
        return accel;
    }
    let boot_id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap_or_default();
    let key = format!("{} {}", boot_id.trim(), qemu.display());
    let cache = cache_dir.join("kvm-probe");
    if let Ok(text) = std::fs::read_to_string(&cache) {
        if let Some((cached_key, verdict)) = text.rsplit_once(' ') {
            if cached_key == key {
                return if verdict.trim() == "kvm" {
                    Accel::Kvm
                } else {
                    Accel::Tcg
                };
            }
        }
    }
    let accel = match probe_kvm(qemu, kernel).await {
        KvmProbe::Works { .. } => Accel::Kvm,
        _ => Accel::Tcg,
    };
    let verdict = if accel == Accel::Kvm { "kvm" } else { "tcg" };
    let _ = std::fs::create_dir_all(cache_dir);
    let _ = std::fs::write(&cache, format!("{key} {verdict}\n"));
    accel
}
