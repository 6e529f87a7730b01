//! `egress.yaml`: the egress sidecar's policy, in the format that sidecar
//! reads (version 1): the bottle's name, its routes, and its secrets as
//! references (`{ env: NAME }` / `{ file: /path }`), never values.

use crate::schema::{Bottle, SecretRef};
use crate::sidecar::egress::policy::{self, Policy, Route, POLICY_VERSION};
use crate::store::{Derivation, Kind, Output, RenderError};
use std::sync::Arc;

/// The policy is the sidecar's own type, so what `bottle build` writes is
/// exactly what the sidecar reads.
pub fn lower(bottle: &Bottle) -> Arc<Derivation> {
    let doc = Policy {
        version: POLICY_VERSION,
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
                headers: r
                    .headers
                    .iter()
                    .map(|h| policy::HeaderInjection {
                        name: h.name.clone(),
                        secret: h.secret.clone(),
                    })
                    .collect(),
                addresses: r
                    .addresses
                    .iter()
                    .map(|a| {
                        a.parse()
                            .expect("schema: route addresses are checked to be IP addresses")
                    })
                    .collect(),
                approve: r.approve,
            })
            .collect(),
        secrets: bottle
            .secrets
            .iter()
            .map(|(name, s)| {
                let secret = match s {
                    SecretRef::Env(v) => policy::SecretRef {
                        env: Some(v.clone()),
                        file: None,
                    },
                    SecretRef::File(f) => policy::SecretRef {
                        env: None,
                        file: Some(f.into()),
                    },
                };
                (name.clone(), secret)
            })
            .collect(),
        upstream_ca: None,
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
