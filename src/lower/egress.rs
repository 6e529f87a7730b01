//! `egress.yaml`: the egress sidecar's policy, in the format that sidecar
//! reads (version 1): the bottle's name, its routes, and its secrets as
//! references (`{ env: NAME }` / `{ file: /path }`), never values.

use crate::schema::Bottle;
use crate::sidecar::egress::policy::{Policy, POLICY_VERSION};
use crate::store::{Derivation, Kind, Output, RenderError};
use std::sync::Arc;

/// The bottle's routes and secret references are already the sidecar's own
/// types (the schema uses them), so what `bottle build` writes is exactly
/// what the checker accepted and what the sidecar reads.
pub fn lower(bottle: &Bottle) -> Arc<Derivation> {
    let doc = Policy {
        version: POLICY_VERSION,
        bottle: bottle.name.clone(),
        routes: bottle.egress.routes.clone(),
        secrets: bottle.secrets.clone(),
        default: bottle.egress.default,
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
