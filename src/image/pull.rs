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

/// How one registry is reached in this process: a user name and the
/// reference of its secret (read only when the registry is asked), and a
/// mirror to pull from instead.
#[derive(Clone, Debug, Default)]
pub struct Access {
    pub auth: Option<(String, crate::schema::SecretRef)>,
    pub mirror: Option<String>,
}

/// Take the registry settings of the bottles' `oci` images.
pub fn configure(bottles: &[crate::schema::Bottle]) {
    for b in bottles {
        if let crate::schema::Image::Oci(reference) = &b.image {
            let r = &b.registry;
            set_access(
                reference,
                Access {
                    auth: r.username.clone().zip(r.credentials.clone()),
                    mirror: r.mirror.clone(),
                },
            );
        }
    }
}

#[derive(Default)]
struct Settings {
    /// `--registry-mirror`: for every registry without its own.
    mirror: Option<String>,
    by_registry: std::collections::HashMap<String, Access>,
}

fn settings() -> &'static std::sync::Mutex<Settings> {
    static SETTINGS: std::sync::OnceLock<std::sync::Mutex<Settings>> = std::sync::OnceLock::new();
    SETTINGS.get_or_init(Default::default)
}

/// Pull every registry through `mirror` (`--registry-mirror`), unless a
/// recipe names its own.
pub fn set_default_mirror(mirror: Option<String>) {
    settings().lock().unwrap_or_else(|p| p.into_inner()).mirror = mirror;
}

/// Reach the registry of `reference` with `access` (from the recipe).
pub fn set_access(reference: &str, access: Access) {
    settings()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .by_registry
        .insert(registry(reference).to_string(), access);
}

/// Where a reference (without tag or digest) is fetched from
/// (`host/repository`, after a mirror) and the credentials file for it, if
/// any: in a private temporary directory, removed when the returned guard
/// drops. The secret is never on a command line.
fn source_of(
    repository: &str,
) -> Result<(String, Option<tempfile::TempDir>, std::path::PathBuf), String> {
    let host = registry(repository);
    let path = match repository.strip_prefix(host) {
        Some(rest) if rest.starts_with('/') => rest[1..].to_string(),
        // Docker Hub: `node` is `library/node`.
        _ if repository.contains('/') => repository.to_string(),
        _ => format!("library/{repository}"),
    };
    let (access, default_mirror) = {
        let s = settings().lock().unwrap_or_else(|p| p.into_inner());
        (
            s.by_registry.get(host).cloned().unwrap_or_default(),
            s.mirror.clone(),
        )
    };
    let contacted = access
        .mirror
        .or(default_mirror)
        .unwrap_or_else(|| host.to_string());
    let source = format!("{contacted}/{path}");
    let Some((user, secret)) = access.auth else {
        return Ok((source, None, Default::default()));
    };
    // Credentials go to the reference's own registry only, never to a mirror.
    if contacted != host {
        return Ok((source, None, Default::default()));
    }
    let secret = crate::sidecar::egress::secrets::read("credentials", &secret).map_err(|e| {
        format!(
            "{e} ({})",
            e.help().map(|h| h.to_string()).unwrap_or_default()
        )
    })?;
    let secret = secret.trim_end_matches(['\r', '\n']);
    // tempfile makes the directory 0700; the file is created 0600.
    let dir = tempfile::Builder::new()
        .prefix("bottle-auth-")
        .tempdir()
        .map_err(|e| format!("making a private directory for the credentials: {e}"))?;
    let file = dir.path().join("auth.json");
    let token = super::fetch::base64_encode(format!("{user}:{secret}").as_bytes());
    let json = serde_json::json!({ "auths": { host: { "auth": token } } });
    {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut out = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&file)
            .map_err(|e| format!("writing the credentials file: {e}"))?;
        out.write_all(json.to_string().as_bytes())
            .map_err(|e| format!("writing the credentials file: {e}"))?;
    }
    Ok((source, Some(dir), file))
}

/// A registry's refusal, said plainly.
fn explain(error: String, host: &str, with_credentials: bool) -> String {
    let lower = error.to_ascii_lowercase();
    if lower.contains("unauthorized") || lower.contains("authentication required") {
        if with_credentials {
            return format!(
                "the registry {host} refused the credentials (wrong user name or password?): {error}"
            );
        }
        return format!(
            "the registry {host} needs credentials (`username` and `credentials` beside `oci`): {error}"
        );
    }
    error
}

/// The digest (`sha256:…`) of the manifest `reference` (by tag) names now,
/// as the registry serves it. Reads the network.
pub fn resolve(reference: &str) -> Result<String, String> {
    use sha2::Digest;
    let (source, auth_dir, auth_file) = source_of(reference)?;
    let mut command = Command::new("skopeo");
    command.args([
        "--insecure-policy",
        "inspect",
        "--raw",
        "--retry-times",
        "1",
    ]);
    if is_loopback(registry(&source)) {
        command.arg("--tls-verify=false");
    }
    if auth_dir.is_some() {
        command.arg("--authfile").arg(&auth_file);
    } else {
        // Not the host user's logins: only what the recipe gives.
        command.arg("--no-creds");
    }
    command.arg(format!("docker://{source}"));
    let raw = run_output(&mut command)
        .map_err(|e| explain(e.0, registry(&source), auth_dir.is_some()))?;
    drop(auth_dir);
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
    let (from, auth_dir, auth_file) = source_of(repository).map_err(RenderError)?;
    let source = format!("docker://{from}@{digest}");
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
    if is_loopback(registry(&from)) {
        command.arg("--src-tls-verify=false");
    }
    let with_credentials = auth_dir.is_some();
    if with_credentials {
        command.arg("--src-authfile").arg(&auth_file);
    } else {
        command.arg("--src-no-creds");
    }
    command
        .arg(&source)
        .arg(format!("oci:{}:image", staged.display()));
    let result = run(&mut command);
    drop(auth_dir);
    if let Err(e) = result {
        let _ = crate::store::output::remove_all(&staged);
        let why = explain(e.0, registry(&from), with_credentials);
        return Err(RenderError(format!("pulling {source}: {why}")));
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
