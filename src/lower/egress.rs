//! `egress.yaml`: the egress sidecar's policy, in the format that sidecar
//! reads (version 1): the bottle's name, its routes, and its secrets as
//! references (`{ env: NAME }` / `{ file: /path }`), never values.

use crate::schema::{Bottle, HeaderInjection, SecretRef};
use crate::store::{Derivation, Kind, Output, RenderError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Policy {
    version: u32,
    bottle: String,
    routes: Vec<Route>,
    secrets: BTreeMap<String, Secret>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Route {
    host: String,
    ports: Vec<u16>,
    inspect: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    methods: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    paths: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    headers: Vec<HeaderInjection>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    addresses: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Secret {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    env: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    file: Option<String>,
}

pub fn lower(bottle: &Bottle) -> Arc<Derivation> {
    let doc = Policy {
        version: 1,
        bottle: bottle.name.clone(),
        routes: bottle
            .egress
            .routes
            .iter()
            .map(|r| Route {
                host: r.host.clone(),
                ports: r.ports.clone(),
                inspect: r.inspect,
                methods: r.methods.clone(),
                paths: r.paths.clone(),
                headers: r.headers.clone(),
                addresses: r.addresses.clone(),
            })
            .collect(),
        secrets: bottle
            .secrets
            .iter()
            .map(|(name, s)| {
                let secret = match s {
                    SecretRef::Env(v) => Secret {
                        env: Some(v.clone()),
                        file: None,
                    },
                    SecretRef::File(f) => Secret {
                        env: None,
                        file: Some(f.clone()),
                    },
                };
                (name.clone(), secret)
            })
            .collect(),
    };
    let inputs = serde_json::to_value(&doc).expect("the egress policy is plain data");
    Derivation::new(Kind::EgressPolicy, "egress.yaml", inputs, [])
        .expect("the egress policy is plain data")
}

pub fn render(drv: &Derivation) -> Result<Output, RenderError> {
    let doc: Policy = serde_json::from_value(drv.inputs().clone())
        .map_err(|e| RenderError(format!("egress inputs: {e}")))?;
    let text = serde_yaml::to_string(&doc).map_err(|e| RenderError(e.to_string()))?;
    Ok(Output::File(text.into_bytes()))
}
