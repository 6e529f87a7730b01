//! `git-gate.toml`: the git gate's policy (`crate::sidecar::git_gate::Policy`,
//! one definition of the format): for each remote the agent may use, its
//! upstream URL or host path, whether fetching is allowed, the ref patterns
//! it may push, whether it may force or delete, the branch to check out and
//! a reference to the upstream's credentials; and the agent's git identity.
//! The guest reaches remote `NAME` at
//! `http://proxy.internal:<git-gate port>/NAME.git`; credentials stay on the
//! host, in the gate.

use crate::schema::Bottle;
use crate::sidecar::git_gate::policy::{default_identity, Credentials, Identity, Policy, Remote};
use crate::store::{Derivation, Kind, Output, RenderError};
use std::sync::Arc;

/// `None` when the bottle names no remotes (and so runs no git gate).
pub fn lower(bottle: &Bottle) -> Option<Arc<Derivation>> {
    if bottle.git.is_empty() {
        return None;
    }
    let doc = Policy {
        version: 1,
        bottle: bottle.name.clone(),
        user: match &bottle.git_user {
            Some(u) => Identity {
                name: u.name.clone(),
                email: u.email.clone(),
            },
            None => default_identity(&bottle.name),
        },
        remotes: bottle
            .git
            .iter()
            .map(|(name, r)| {
                (
                    name.clone(),
                    Remote {
                        url: r.url.clone(),
                        fetch: r.fetch.clone(),
                        push: r.push.clone(),
                        force: r.force,
                        delete: r.delete,
                        push_ask: r.push_ask,
                        checkout: r.checkout.clone(),
                        credentials: r.credentials.as_ref().map(|c| Credentials {
                            username: r
                                .username
                                .clone()
                                .unwrap_or_else(|| "x-access-token".into()),
                            secret: c.clone(),
                        }),
                    },
                )
            })
            .collect(),
    };
    let inputs = serde_json::to_value(&doc).expect("the git-gate config is plain data");
    Some(
        Derivation::new(Kind::GitGateConfig, "git-gate.toml", inputs, [])
            .expect("the git-gate config is plain data"),
    )
}

pub fn render(drv: &Derivation) -> Result<Output, RenderError> {
    let doc: Policy = serde_json::from_value(drv.inputs().clone())
        .map_err(|e| RenderError(format!("git-gate inputs: {e}")))?;
    let text = doc.to_toml().map_err(RenderError)?;
    Ok(Output::File(text.into_bytes()))
}

/// One line per remote, for `bottle build --dry-run`: where the guest
/// reaches it, what it mirrors, and what the agent may push.
pub fn describe(bottle: &Bottle) -> Vec<String> {
    let port = super::ports::port_of("git-gate");
    bottle
        .git
        .iter()
        .map(|(name, r)| {
            let push = if r.push.is_empty() {
                "no pushes".to_string()
            } else {
                format!("push {}", r.push.join(" "))
            };
            let mut extra = String::new();
            if r.fetch.is_empty() {
                extra.push_str(", no fetches");
            } else if r.fetch != crate::schema::all_refs() {
                extra.push_str(&format!(", fetch {}", r.fetch.join(" ")));
            }
            if r.force {
                extra.push_str(", force");
            }
            if r.delete {
                extra.push_str(", delete");
            }
            if r.push_ask {
                extra.push_str(", other refs ask a person");
            }
            format!(
                "git gate: http://{}:{port}/{name}.git mirrors {} ({push}{extra})",
                super::network::PROXY_HOST,
                r.url
            )
        })
        .collect()
}
