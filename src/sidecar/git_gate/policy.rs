//! `git-gate.toml`, the gate's stored policy: one definition of the format,
//! rendered by `bottle build` (`crate::lower::git_gate`) and read by the gate.
//! It holds references to credentials, never their values.

use crate::schema::SecretRef;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    pub version: u32,
    pub bottle: String,
    /// The agent's git identity, configured in the guest's checkout.
    pub user: Identity,
    pub remotes: BTreeMap<String, Remote>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Identity {
    pub name: String,
    pub email: String,
}

/// One upstream the agent reaches at `http://proxy.internal:<port>/<name>.git`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Remote {
    /// An `https://`/`http://` URL, or an absolute path to a repository on the host.
    pub url: String,
    /// Ref patterns the mirror holds and the agent may fetch; empty: no fetches.
    pub fetch: Vec<String>,
    /// Ref patterns the agent may push; `*` matches any run of characters.
    pub push: Vec<String>,
    #[serde(default)]
    pub force: bool,
    #[serde(default)]
    pub delete: bool,
    /// A push to a ref outside `push` asks a person through the run's broker
    /// (`crate::supervise`) instead of being refused.
    #[serde(
        default,
        rename = "push-ask",
        skip_serializing_if = "std::ops::Not::not"
    )]
    pub push_ask: bool,
    /// The branch checked out in the agent's workdir; the upstream's HEAD when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checkout: Option<String>,
    /// Basic-auth credentials for the upstream, read on the host at run time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<Credentials>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    /// The user name sent with the secret (the password or token).
    pub username: String,
    pub secret: SecretRef,
}

/// The identity an agent commits with when the recipe names none.
pub fn default_identity(bottle: &str) -> Identity {
    Identity {
        name: format!("{bottle} (bottle agent)"),
        email: format!("{bottle}@bottle.invalid"),
    }
}

impl Policy {
    pub fn load(path: &Path) -> Result<Policy, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        toml::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    pub fn to_toml(&self) -> Result<String, String> {
        toml::to_string(self).map_err(|e| e.to_string())
    }
}

impl Remote {
    /// Whether the upstream is a repository on this host.
    pub fn is_local(&self) -> bool {
        self.url.starts_with('/')
    }
}
