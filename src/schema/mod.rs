//! The typed bottle: what a recipe must evaluate to, as Rust structs.
//!
//! `check` turns an evaluated value (a [`Node`] tree) into a [`Bottle`],
//! reporting each bad value at the recipe span that produced it. Everything
//! downstream (`lower`, `store`, `realize`) works from the typed `Bottle` and
//! never sees the recipe. The structs are serde types too, so tests and tools
//! can write a bottle as JSON (there a route lists its `ports`: it is the
//! egress policy's route); `docs/recipes.md` describes every field.

mod check;
pub mod node;
pub mod unrealized;

/// One egress model: a bottle's routes, header injections and secret
/// references are the egress sidecar's own policy types, and a route's host
/// is checked by parsing it into the pattern the sidecar matches with.
pub use crate::sidecar::egress::policy::{HeaderInjection, Route, SecretRef};
pub use crate::sidecar::egress::rules::{HostPattern, HostPatternError};
pub use check::{check, check_all, check_report, field_paths, CheckError, SetChecker};
pub use node::{Node, NodeValue, Span};

use crate::store::Derivation;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

// Every default a recipe may leave out, and every limit on a value, in one
// place: the checker fills them in and enforces them, and lowering and the
// realizer use these constants, never a copy of their values.

/// Virtual CPUs when a recipe gives none.
pub const DEFAULT_CPUS: u32 = 2;
/// Guest memory (MiB) when a recipe gives none.
pub const DEFAULT_MEMORY: u32 = 2048;
/// The agent's user when a recipe gives none.
pub const DEFAULT_USER: &str = "agent";
/// The agent's working directory when a recipe gives none.
pub const DEFAULT_WORKDIR: &str = "/work";
/// A route's ports when it lists none.
pub const DEFAULT_PORTS: &[u16] = &[443];
/// The fewest CPUs a VM boots with.
pub const MIN_CPUS: u32 = 1;
/// The most CPUs a recipe may ask for.
pub const MAX_CPUS: u32 = 64;
/// The least memory (MiB) bottle's guest boots in; `bottle run` refuses less.
pub const MIN_MEMORY: u32 = 128;
/// The most memory (MiB) a recipe may ask for (1 TiB).
pub const MAX_MEMORY: u32 = 1 << 20;

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
    /// The agent's git identity (`git.user`); a default from the name when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git_user: Option<GitUser>,
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
    /// A directory on the host (`{ dir = ./rootfs; }`), by content: `tree`
    /// is its content hash, read when the recipe was checked.
    Dir {
        path: std::path::PathBuf,
        tree: String,
    },
    /// A local OCI image: `format` is `oci-layout` (a directory) or
    /// `oci-archive` (a tar); `tree` is its content hash; `reference` picks
    /// one image by its tag when the layout holds several.
    OciLocal {
        format: String,
        path: std::path::PathBuf,
        tree: String,
        reference: Option<String>,
    },
    /// Debian packages (`{ debian = { suite; packages; mirror; }; }`).
    Debian {
        suite: String,
        packages: Vec<String>,
        mirror: String,
    },
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Egress {
    /// Allowed destinations; everything else is denied.
    #[serde(default)]
    pub routes: Vec<Route>,
    /// `"ask"`: a request no route allows waits for a person instead.
    #[serde(
        default,
        skip_serializing_if = "crate::sidecar::egress::policy::Unmatched::is_deny"
    )]
    pub default: crate::sidecar::egress::policy::Unmatched,
}

/// An upstream git remote the agent may use through the git gate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Remote {
    /// An `https://`/`http://` URL, or an absolute path to a repository on the host.
    pub url: String,
    /// Ref patterns the gate mirrors and the agent may fetch; empty refuses fetches.
    #[serde(default = "all_refs")]
    pub fetch: Vec<String>,
    /// Ref patterns the agent may push (`refs/heads/agent/*`); empty means none.
    #[serde(default)]
    pub push: Vec<String>,
    /// Non-fast-forward pushes to allowed refs.
    #[serde(default)]
    pub force: bool,
    /// Deleting allowed refs.
    #[serde(default)]
    pub delete: bool,
    /// A push to a ref outside `push` asks a person (`bottle supervise`)
    /// instead of being refused.
    #[serde(
        default,
        rename = "push-ask",
        skip_serializing_if = "std::ops::Not::not"
    )]
    pub push_ask: bool,
    /// The branch checked out in the agent's workdir.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkout: Option<String>,
    /// The upstream's password or token, a reference resolved on the host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<SecretRef>,
    /// The user name sent with `credentials` (default `x-access-token`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
}

/// The name and email the agent commits with.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GitUser {
    pub name: String,
    pub email: String,
}

/// Every branch and tag: what `fetch = true` (the default) means.
pub fn all_refs() -> Vec<String> {
    vec!["refs/heads/*".into(), "refs/tags/*".into()]
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

/// The sidecars the guest reaches, in start order. Supervise is not one:
/// it talks to a person on the host, and to the egress proxy in-process.
pub fn sidecars_of(bottle: &Bottle) -> Vec<&'static str> {
    let mut names = vec!["egress"];
    if !bottle.git.is_empty() {
        names.push("git-gate");
    }
    names
}
