//! The typed bottle: what a recipe must evaluate to, as Rust structs.
//!
//! `check` turns an evaluated value (a [`Node`] tree) into a [`Bottle`],
//! reporting each bad value at the recipe span that produced it. Everything
//! downstream (`lower`, `store`, `realize`) works from the typed `Bottle` and
//! never sees the recipe. The structs are serde types too, so tests and tools
//! can write a bottle as JSON; `docs/recipes.md` describes every field.

mod check;
mod host;
pub mod node;

pub use check::{check, check_all, check_report, CheckError, SetChecker};
pub use host::{HostPattern, HostPatternError};
pub use node::{Node, NodeValue, Span};

use crate::store::Derivation;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

/// One bottle: an agent, the VM it runs in, and everything it may reach.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bottle {
    /// A slug: lowercase letters, digits and `-`, starting with a letter or digit.
    pub name: String,
    pub agent: Agent,
    pub image: Image,
    /// Virtual CPUs.
    #[serde(default = "default_cpus")]
    pub cpus: u32,
    /// Memory in MiB.
    #[serde(default = "default_memory")]
    pub memory: u32,
    /// Environment of the agent (merged under `agent.env`).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Secrets by name: references only, resolved on the host at run time.
    #[serde(default)]
    pub secrets: BTreeMap<String, SecretRef>,
    #[serde(default)]
    pub egress: Egress,
    /// Upstream git remotes by name; non-empty starts the git-gate sidecar.
    #[serde(default)]
    pub git: BTreeMap<String, Remote>,
    #[serde(default)]
    pub sidecars: Sidecars,
    /// Extra guest files: absolute guest path → content.
    #[serde(default)]
    pub files: BTreeMap<String, GuestFile>,
    /// Derivations the bottle mentions (through strings or `files`), which
    /// must be built and visible in the guest under `/bottle/store`.
    #[serde(skip)]
    pub refs: Vec<Arc<Derivation>>,
}

pub const DEFAULT_CPUS: u32 = 2;
pub const DEFAULT_MEMORY: u32 = 2048;
fn default_cpus() -> u32 {
    DEFAULT_CPUS
}
fn default_memory() -> u32 {
    DEFAULT_MEMORY
}

/// The program the bottle exists to run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Agent {
    /// Executable and arguments, run in `workdir` as `user`.
    pub command: Vec<String>,
    #[serde(default = "default_user")]
    pub user: String,
    #[serde(default = "default_workdir")]
    pub workdir: String,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
}

pub const DEFAULT_USER: &str = "agent";
pub const DEFAULT_WORKDIR: &str = "/work";
fn default_user() -> String {
    DEFAULT_USER.to_string()
}
fn default_workdir() -> String {
    DEFAULT_WORKDIR.to_string()
}

/// Where the guest's filesystem comes from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub enum Image {
    /// An OCI image reference, e.g. `docker.io/library/node:22-slim`.
    Oci(String),
    /// A minimal root filesystem the realizer assembles from the host's
    /// static busybox: a shell and coreutils, nothing else.
    Busybox,
}

/// A reference to a secret held on the host. Never the secret itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub enum SecretRef {
    /// Read from this host environment variable when the bottle runs.
    Env(String),
    /// Read from this host file when the bottle runs.
    File(String),
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Egress {
    /// Allowed destinations; everything else is denied.
    #[serde(default)]
    pub routes: Vec<Route>,
}

/// One allowed destination of the egress proxy.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// Exact host, `*.example.com` (any subdomain), or an IP literal.
    pub host: String,
    #[serde(default = "default_ports")]
    pub ports: Vec<u16>,
    /// Terminate TLS so methods, paths and headers can be checked and injected.
    #[serde(default)]
    pub inspect: bool,
    /// Allowed methods (needs `inspect`); absent means any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub methods: Option<Vec<String>>,
    /// Allowed path patterns, `*` matching any run of characters (needs `inspect`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paths: Option<Vec<String>>,
    /// Headers the proxy adds with a secret's value (needs `inspect`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<HeaderInjection>,
    /// Private or loopback addresses this host may resolve to, exempt from
    /// the proxy's SSRF refusal.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses: Vec<String>,
    /// Hold each new connection until a person allows it (`bottle supervise`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub approve: bool,
}

fn default_ports() -> Vec<u16> {
    vec![443]
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeaderInjection {
    pub name: String,
    /// A key of the bottle's `secrets`.
    pub secret: String,
}

/// An upstream git remote the agent may use through the git gate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Remote {
    pub url: String,
    #[serde(default = "yes")]
    pub fetch: bool,
    /// Ref patterns the agent may push (`refs/heads/agent/*`); empty means none.
    #[serde(default)]
    pub push: Vec<String>,
}

fn yes() -> bool {
    true
}

/// Optional sidecars (egress is always on; git-gate follows `git`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sidecars {
    #[serde(default)]
    pub supervise: bool,
}

/// Content of a guest file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub enum GuestFile {
    /// Literal text, written into the store as a file derivation.
    Text(String),
    /// A derivation's output, by its guest store path.
    Store(String),
}

/// The sidecars a bottle runs, in start order.
pub fn sidecars_of(bottle: &Bottle) -> Vec<&'static str> {
    let mut names = vec!["egress"];
    if !bottle.git.is_empty() {
        names.push("git-gate");
    }
    if bottle.sidecars.supervise {
        names.push("supervise");
    }
    names
}
