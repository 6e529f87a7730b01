//! `smolfile.toml`: the VM spec in smolvm's Smolfile vocabulary (image,
//! entrypoint, cmd, env as `KEY=VALUE`, workdir, user, cpus, memory,
//! `net_backend = "virtio-net"`, and the egress hosts as `[network]`
//! patterns). bottle consumes it itself (smolvm cannot attach gvproxy), but
//! it stays a valid Smolfile, checked against smolvm's own parser in tests.
//!
//! Only an OCI reference is an `image` in Smolfile terms; a busybox guest
//! leaves `image` out and says so in a comment. Secrets are left out on
//! purpose: they reach the guest only through the egress proxy's headers.
//!
//! The realizer reads the stored file back ([`Smolfile::load`]) for the
//! agent's command, environment, user, working directory and the VM's size:
//! this file, not the recipe, is what a run starts.

use super::network::PROXY_HOST;
use crate::schema::{Bottle, HostPattern, Image};
use crate::store::{Derivation, Kind, Output, RenderError};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// The Smolfile as rendered; field order is the file's order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Smolfile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// The agent's command and arguments.
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    /// The agent's whole environment as `KEY=VALUE`, proxy variables included.
    pub env: Vec<String>,
    pub workdir: String,
    pub user: String,
    pub cpus: u32,
    /// MiB.
    pub memory: u32,
    pub net: bool,
    pub net_backend: String,
    pub stop_on_exit: bool,
    pub network: SmolNetwork,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmolNetwork {
    pub allow_host_patterns: Vec<String>,
    pub allow_cidrs: Vec<String>,
}

impl Smolfile {
    /// Read a stored `smolfile.toml`.
    pub fn load(path: &std::path::Path) -> Result<Smolfile, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// The command the agent runs: `entrypoint` then `cmd`.
    pub fn command(&self) -> Vec<String> {
        self.entrypoint.iter().chain(&self.cmd).cloned().collect()
    }
}

/// The agent's environment: bottle-wide `env`, then `agent.env` over it,
/// then the proxy variables bottle sets so every HTTP client finds egress
/// (both spellings, since tools read one or the other).
pub fn guest_env(bottle: &Bottle) -> Vec<(String, String)> {
    let mut env = bottle.env.clone();
    env.extend(bottle.agent.env.clone());
    let proxy = format!("http://{PROXY_HOST}:{}", super::ports::port_of("egress"));
    for key in ["HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy"] {
        env.insert(key.to_string(), proxy.clone());
    }
    // Reached directly, not through egress: the guest's own loopback and
    // the sidecars themselves.
    let direct = format!("localhost,127.0.0.1,::1,{PROXY_HOST}");
    for key in ["NO_PROXY", "no_proxy"] {
        env.insert(key.to_string(), direct.clone());
    }
    env.into_iter().collect()
}

pub fn lower(bottle: &Bottle) -> Arc<Derivation> {
    let mut hosts = Vec::new();
    let mut cidrs = Vec::new();
    for route in &bottle.egress.routes {
        match HostPattern::parse(&route.host) {
            Ok(HostPattern::Address(ip)) => {
                cidrs.push(format!("{ip}/{}", if ip.is_ipv4() { 32 } else { 128 }))
            }
            _ => hosts.push(route.host.clone()),
        }
    }
    hosts.sort();
    hosts.dedup();
    cidrs.sort();
    cidrs.dedup();
    let doc = Smolfile {
        image: match &bottle.image {
            Image::Oci(r) => Some(r.clone()),
            _ => None,
        },
        entrypoint: bottle.agent.command.clone(),
        cmd: Vec::new(),
        env: guest_env(bottle)
            .into_iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect(),
        workdir: bottle.agent.workdir.clone(),
        user: bottle.agent.user.clone(),
        cpus: bottle.cpus,
        memory: bottle.memory,
        net: true,
        net_backend: "virtio-net".to_string(),
        stop_on_exit: true,
        network: SmolNetwork {
            allow_host_patterns: hosts,
            allow_cidrs: cidrs,
        },
    };
    let mut inputs = serde_json::to_value(&doc).expect("the Smolfile is plain data");
    inputs["comment"] = match &bottle.image {
        Image::Busybox => "image: a busybox root filesystem assembled by bottle on the host".into(),
        Image::Oci(_) => serde_json::Value::Null,
        _ => "image: the root file system image bottle built (root.erofs in the bottle)".into(),
    };
    Derivation::new(Kind::Smolfile, "smolfile.toml", inputs, [])
        .expect("the Smolfile is plain data")
}

pub fn render(drv: &Derivation) -> Result<Output, RenderError> {
    let mut inputs = drv.inputs().clone();
    let comment = inputs.as_object_mut().and_then(|m| m.remove("comment"));
    let doc: Smolfile =
        serde_json::from_value(inputs).map_err(|e| RenderError(format!("smolfile inputs: {e}")))?;
    let mut text = String::from(
        "# Generated by bottle from a recipe; the VM spec in smolvm's Smolfile format.\n",
    );
    if let Some(serde_json::Value::String(c)) = comment {
        text.push_str(&format!("# {c}\n"));
    }
    text.push_str(&toml::to_string(&doc).map_err(|e| RenderError(e.to_string()))?);
    Ok(Output::File(text.into_bytes()))
}
