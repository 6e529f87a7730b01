//! `ports.json`: which guest-visible port on `proxy.internal` reaches which
//! sidecar. Fixed per sidecar, so a recipe's hash never depends on what is
//! free on the host: the realizer relays these ports, inside gvproxy's
//! network namespace, to the sidecars' Unix sockets.

use crate::schema::Bottle;
use crate::store::{Derivation, Kind, Output, RenderError};
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The guest port of each sidecar.
pub fn port_of(sidecar: &str) -> u16 {
    match sidecar {
        "egress" => 3128,
        "git-gate" => 3129,
        other => unreachable!(
            "no port assigned to sidecar {other}: schema::sidecars_of and port_of disagree"
        ),
    }
}

pub fn ports(bottle: &Bottle) -> BTreeMap<String, u16> {
    crate::schema::sidecars_of(bottle)
        .into_iter()
        .map(|s| (s.to_string(), port_of(s)))
        .collect()
}

/// Read a stored `ports.json`: sidecar name → guest port.
pub fn load(path: &std::path::Path) -> Result<BTreeMap<String, u16>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

pub fn lower(bottle: &Bottle) -> Arc<Derivation> {
    let inputs = json!({ "ports": ports(bottle) });
    Derivation::new(Kind::PortMap, "ports.json", inputs, [])
        .expect("port maps hold only strings and ints")
}

pub fn render(drv: &Derivation) -> Result<Output, RenderError> {
    let ports: BTreeMap<String, u16> = serde_json::from_value(drv.inputs()["ports"].clone())
        .map_err(|e| RenderError(format!("port map inputs: {e}")))?;
    let text = serde_json::to_string_pretty(&ports).map_err(|e| RenderError(e.to_string()))?;
    Ok(Output::File((text + "\n").into_bytes()))
}
