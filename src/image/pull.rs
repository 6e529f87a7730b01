//! OCI references pinned by digest (`"registry/name@sha256:…"`, or with a
//! tag before the digest): a fixed-output pull over the distribution API.
//! `skopeo copy` fetches the manifest (resolving a manifest list or index
//! for linux/amd64), checks it and every blob against their digests, and
//! writes an OCI layout; the `oci` kind unpacks that like a local layout.
//! A registry on a loopback address is spoken to over plain HTTP; any other
//! over HTTPS with the host's CA certificates.
//!
//! A reference by tag alone is pinned through `bottle.lock` (see `lock.rs`):
//! [`resolve`] asks the registry for the manifest the tag names and locks
//! the digest of its bytes (of the manifest list, if it is one, so the pull
//! still picks linux/amd64 from it); builds pull by that digest.

use super::{io, run, run_output};
use crate::store::{Derivation, Kind, Output, RenderError};
use std::process::Command;
use std::sync::Arc;

/// A reference split at its digest: `(name[:tag], sha256:…)`.
pub fn pinned(reference: &str) -> Option<(&str, &str)> {
    let (name, digest) = reference.split_once('@')?;
    let hex = digest.strip_prefix("sha256:")?;
    (hex.len() == 64
        && hex
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()))
    .then_some((name, digest))
}

/// The registry host of a reference (`docker.io` when it names none).
fn registry(name: &str) -> &str {
    match name.split_once('/') {
        Some((first, _)) if first.contains(['.', ':']) || first == "localhost" => first,
        _ => "docker.io",
    }
}

fn is_loopback(registry: &str) -> bool {
    let host = registry
        .rsplit_once(':')
        .filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit()))
        .map_or(registry, |(host, _)| host);
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The digest (`sha256:…`) of the manifest `reference` (by tag) names now,
/// as the registry serves it. Reads the network.
pub fn resolve(reference: &str) -> Result<String, String> {
    use sha2::Digest;
    let mut command = Command::new("skopeo");
    command.args([
        "--insecure-policy",
        "inspect",
        "--raw",
        "--retry-times",
        "1",
    ]);
    if is_loopback(registry(reference)) {
        command.arg("--tls-verify=false");
    }
    command.arg(format!("docker://{reference}"));
    let raw = run_output(&mut command).map_err(|e| e.0)?;
    if raw.is_empty() {
        return Err("the registry sent an empty manifest".into());
    }
    let digest = sha2::Sha256::digest(&raw);
    Ok(format!(
        "sha256:{}",
        digest
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    ))
}

/// The pull of `reference` (which must be [`pinned`]).
pub fn pull(reference: &str) -> Option<Arc<Derivation>> {
    let (name, digest) = pinned(reference)?;
    let last = name.rsplit('/').next().unwrap_or(name);
    let last = last.split(':').next().unwrap_or(last);
    Derivation::new(
        Kind::OciPull,
        format!("{}-oci", super::tree::store_name(last)),
        serde_json::json!({ "name": name, "digest": digest }),
        [],
    )
    .ok()
}

pub fn render(drv: &Derivation) -> Result<Output, RenderError> {
    let inputs = drv.inputs();
    let name = inputs["name"].as_str().unwrap_or_default();
    let digest = inputs["digest"].as_str().unwrap_or_default();
    // A tag before the digest is informative only: the digest decides.
    let repository = match name.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => repo,
        _ => name,
    };
    let source = format!("docker://{repository}@{digest}");
    let staged = crate::store::staging_path(drv.name());
    let mut command = Command::new("skopeo");
    command
        .args([
            "--insecure-policy",
            "--override-os",
            "linux",
            "--override-arch",
            "amd64",
        ])
        .args(["copy", "--quiet"]);
    if is_loopback(registry(repository)) {
        command.arg("--src-tls-verify=false");
    }
    command
        .arg(&source)
        .arg(format!("oci:{}:image", staged.display()));
    if let Err(e) = run(&mut command) {
        let _ = crate::store::output::remove_all(&staged);
        return Err(RenderError(format!("pulling {source}: {}", e.0)));
    }
    std::fs::metadata(staged.join("index.json")).map_err(io("the pulled layout"))?;
    Ok(Output::Staged(staged))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references() {
        let d = "sha256:".to_string() + &"a".repeat(64);
        assert_eq!(
            pinned(&format!("r.io/x:1@{d}")),
            Some(("r.io/x:1", d.as_str()))
        );
        assert_eq!(pinned("r.io/x:1"), None);
        assert_eq!(registry("127.0.0.1:5000/x"), "127.0.0.1:5000");
        assert_eq!(registry("library/node"), "docker.io");
        assert!(is_loopback("127.0.0.1:5000"));
        assert!(is_loopback("localhost:5000"));
        assert!(!is_loopback("ghcr.io"));
    }
}
