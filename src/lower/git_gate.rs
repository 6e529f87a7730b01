//! `git-gate.toml`: the git gateway's policy: for each remote the agent may
//! use, its upstream URL, whether fetching is allowed, and the ref patterns
//! it may push. The guest reaches remote `NAME` at
//! `http://proxy.internal:<git-gate port>/NAME.git`; credentials for the
//! upstream stay on the host, in the gate.

use crate::schema::Bottle;
use crate::store::{Derivation, Kind, Output, RenderError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct GateConfig {
    version: u32,
    bottle: String,
    remotes: BTreeMap<String, Remote>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Remote {
    url: String,
    fetch: bool,
    push: Vec<String>,
}

/// `None` when the bottle names no remotes (and so runs no git gate).
pub fn lower(bottle: &Bottle) -> Option<Arc<Derivation>> {
    if bottle.git.is_empty() {
        return None;
    }
    let doc = GateConfig {
        version: 1,
        bottle: bottle.name.clone(),
        remotes: bottle
            .git
            .iter()
            .map(|(name, r)| {
                (
                    name.clone(),
                    Remote {
                        url: r.url.clone(),
                        fetch: r.fetch,
                        push: r.push.clone(),
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
    let doc: GateConfig = serde_json::from_value(drv.inputs().clone())
        .map_err(|e| RenderError(format!("git-gate inputs: {e}")))?;
    let text = toml::to_string(&doc).map_err(|e| RenderError(e.to_string()))?;
    Ok(Output::File(text.into_bytes()))
}
