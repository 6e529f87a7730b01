//! Debian package trees: `{ debian = { suite = "bookworm"; packages = [ … ]; }; }`.
//! `mmdebstrap` (minbase variant, root mode) installs the packages from the
//! mirror into a directory with `SOURCE_DATE_EPOCH=0`, then what would make
//! the tree depend on the host or the day is removed: `/etc/resolv.conf`,
//! `/etc/hostname`, the machine id, apt's downloaded indexes, logs and
//! caches. `/dev` is left empty (the guest mounts devtmpfs there).
//!
//! The package versions are whatever the mirror's index holds when the tree
//! is built; the installed versions are recorded in the tree at
//! `/etc/bottle-packages` (`dpkg-query` output) so two trees can be compared.

use super::{io, run};
use crate::store::{Derivation, Kind, Output, RenderError};
use std::fs;
use std::process::Command;
use std::sync::Arc;

/// The default mirror: Debian's CDN, as the host's apt sources use it.
pub const DEFAULT_MIRROR: &str = "http://deb.debian.org/debian";

/// The `debian` derivation of a package set (sorted, each once).
pub fn debian(suite: &str, packages: &[String], mirror: &str) -> Arc<Derivation> {
    let mut packages = packages.to_vec();
    packages.sort();
    packages.dedup();
    Derivation::new(
        Kind::Debian,
        format!("debian-{}", super::tree::store_name(suite)),
        serde_json::json!({
            "suite": suite,
            "packages": packages,
            "mirror": mirror,
            "variant": "minbase",
        }),
        [],
    )
    .expect("a cleaned name and plain data")
}

pub fn render(drv: &Derivation) -> Result<Output, RenderError> {
    let inputs = drv.inputs();
    let field = |key: &str| {
        inputs[key]
            .as_str()
            .ok_or_else(|| RenderError(format!("debian inputs have no `{key}`")))
    };
    let (suite, mirror, variant) = (field("suite")?, field("mirror")?, field("variant")?);
    let packages: Vec<&str> = inputs["packages"]
        .as_array()
        .map(|list| list.iter().filter_map(|p| p.as_str()).collect())
        .unwrap_or_default();
    let staged = crate::store::staging_path(drv.name());
    let mut command = Command::new("mmdebstrap");
    command
        .env("SOURCE_DATE_EPOCH", "0")
        .env("LC_ALL", "C.UTF-8")
        .arg(format!("--variant={variant}"))
        .args(["--mode=root", "--format=directory", "--quiet"])
        .args(["--skip=output/dev", "--skip=output/mknod"])
        // Not the host's apt settings, not its proxies: only the recipe's mirror.
        .arg("--aptopt=Acquire::Check-Valid-Until \"false\"")
        .arg("--dpkgopt=path-exclude=/usr/share/doc/*")
        .arg("--dpkgopt=path-include=/usr/share/doc/*/copyright")
        .arg("--dpkgopt=path-exclude=/usr/share/man/*")
        .arg("--dpkgopt=path-exclude=/usr/share/locale/*")
        .arg("--dpkgopt=path-exclude=/usr/share/info/*");
    if !packages.is_empty() {
        command.arg(format!("--include={}", packages.join(",")));
    }
    command.arg(suite).arg(&staged).arg(mirror);
    if let Err(e) = run(&mut command) {
        let _ = crate::store::output::remove_all(&staged);
        return Err(e);
    }
    if let Err(e) = scrub(&staged) {
        let _ = crate::store::output::remove_all(&staged);
        return Err(e);
    }
    Ok(Output::Staged(staged))
}

/// Remove what depends on the host or the day, and record the package list.
fn scrub(root: &std::path::Path) -> Result<(), RenderError> {
    let listing = Command::new("chroot")
        .arg(root)
        .args([
            "dpkg-query",
            "-W",
            "-f",
            "${Package} ${Version} ${Architecture}\\n",
        ])
        .output()
        .map_err(io("listing the installed packages"))?;
    let mut lines: Vec<&str> = std::str::from_utf8(&listing.stdout)
        .unwrap_or("")
        .lines()
        .collect();
    lines.sort();
    fs::write(root.join("etc/bottle-packages"), lines.join("\n") + "\n")
        .map_err(io("writing /etc/bottle-packages"))?;
    for file in [
        "etc/resolv.conf",
        "etc/hostname",
        "var/cache/ldconfig/aux-cache",
    ] {
        let _ = fs::remove_file(root.join(file));
    }
    // An empty machine id: systemd-less guests never read it, and it is not the host's.
    fs::write(root.join("etc/machine-id"), "").map_err(io("writing /etc/machine-id"))?;
    for dir in [
        "var/lib/apt/lists",
        "var/cache/apt",
        "var/log",
        "tmp",
        "run",
        "dev",
    ] {
        let path = root.join(dir);
        let Ok(entries) = fs::read_dir(&path) else {
            continue;
        };
        for entry in entries.flatten() {
            // apt's lock files and partial/ directories are recreated as needed.
            let _ = crate::store::output::remove_all(&entry.path());
        }
    }
    Ok(())
}
