//! The top-level bottle derivation: a directory with `manifest.json` and a
//! relative link to each of the bottle's outputs (`smolfile.toml -> ../<hash>-smolfile.toml`).
//! The manifest is what `bottle run` reads: everything the realizer needs
//! (image, agent, network, sidecar ports, guest files, store paths to make
//! visible under `/bottle/store`), so it never reads the recipe again.

use super::network::Network;
use crate::schema::{Bottle, Image};
use crate::store::{Derivation, Kind, Output, RenderError};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The manifest's file name inside a bottle's store path.
pub const MANIFEST: &str = "manifest.json";

/// `manifest.json`, typed, for the realizer: everything it needs from a
/// built bottle (see docs/store.md). Store names are relative to the store
/// directory the bottle is in.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub version: u32,
    pub name: String,
    /// `{ "oci": "<reference>" }`, `{ "busybox": true }`, or `{ "root": "<store name>" }`
    /// (an erofs image bottle built, also the `root.erofs` output).
    pub image: Value,
    pub agent: ManifestAgent,
    /// The agent's whole environment, proxy variables included, in order.
    pub env: Vec<(String, String)>,
    pub cpus: u32,
    /// MiB.
    pub memory: u32,
    pub network: Network,
    /// Sidecar name → guest port on `proxy.internal`.
    pub sidecars: BTreeMap<String, u16>,
    /// Names of the bottle's secrets (their references are in `egress.yaml`).
    pub secrets: Vec<String>,
    /// Output link name (`egress.yaml`, …) → store name.
    pub outputs: BTreeMap<String, String>,
    /// Guest path → store name of the file to place there.
    pub files: BTreeMap<String, String>,
    /// Store names to make visible in the guest under `/bottle/store/`.
    pub guest_store: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestAgent {
    pub command: Vec<String>,
    pub user: String,
    pub workdir: String,
}

impl Manifest {
    /// Read the manifest of the bottle at `bottle_dir` (a store path, or a
    /// `-o` result link to one).
    pub fn load(bottle_dir: &std::path::Path) -> miette::Result<Manifest> {
        let path = bottle_dir.join(MANIFEST);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            miette::miette!(
                help = "build it with `bottle build RECIPE -o result`",
                "cannot read {}: {e}",
                path.display()
            )
        })?;
        serde_json::from_str(&text).map_err(|e| {
            miette::miette!(
                help = "rebuild the bottle with this version of bottle",
                "{} is not a bottle manifest: {e}",
                path.display()
            )
        })
    }

    /// Where output `link` (`egress.yaml`, `gvproxy.yaml`, …) is on this host.
    pub fn output(&self, store: &std::path::Path, link: &str) -> Option<std::path::PathBuf> {
        self.outputs.get(link).map(|name| store.join(name))
    }
}

pub struct Parts {
    /// Link name in the bottle directory → derivation (`smolfile.toml` → …).
    pub outputs: Vec<(&'static str, Arc<Derivation>)>,
    /// Guest path → file derivation.
    pub files: BTreeMap<String, Arc<Derivation>>,
}

pub fn lower(bottle: &Bottle, parts: Parts) -> Arc<Derivation> {
    let network = Network::for_bottle(&bottle.name);
    // A root image bottle built is one of the outputs; the rest are
    // realized (busybox) or refused (OCI references by tag) by `bottle run`.
    let root = parts
        .outputs
        .iter()
        .find(|(link, _)| *link == super::image::LINK);
    let image = match (root, &bottle.image) {
        (Some((_, root)), _) => json!({ "root": root.store_name() }),
        (None, Image::Oci(r)) => json!({ "oci": r }),
        (None, _) => json!({ "busybox": true }),
    };
    // Everything the guest must see under /bottle/store: the guest files and
    // whatever the bottle's strings mention, with their own dependencies.
    let guest_roots: Vec<Arc<Derivation>> = parts
        .files
        .values()
        .cloned()
        .chain(bottle.refs.iter().cloned())
        .collect();
    let guest_store: Vec<String> = crate::store::derivation::closure_of(&guest_roots)
        .iter()
        .map(|d| d.store_name())
        .collect();
    let inputs = json!({
        "version": 1,
        "name": bottle.name,
        "image": image,
        "agent": {
            "command": bottle.agent.command,
            "user": bottle.agent.user,
            "workdir": bottle.agent.workdir,
        },
        "env": super::smolfile::guest_env(bottle).into_iter().map(|(k, v)| json!([k, v])).collect::<Vec<_>>(),
        "cpus": bottle.cpus,
        "memory": bottle.memory,
        "network": network,
        "sidecars": super::ports::ports(bottle),
        "secrets": bottle.secrets.keys().collect::<Vec<_>>(),
        "outputs": parts.outputs.iter().map(|(link, d)| (link.to_string(), Value::from(d.store_name()))).collect::<serde_json::Map<_, _>>(),
        "files": parts.files.iter().map(|(guest, d)| (guest.clone(), Value::from(d.store_name()))).collect::<serde_json::Map<_, _>>(),
        "guest_store": guest_store,
    });
    let deps = parts.outputs.into_iter().map(|(_, d)| d).chain(guest_roots);
    Derivation::new(Kind::Bottle, bottle.name.clone(), inputs, deps)
        .expect("a bottle's name is a valid slug and its inputs plain data")
}

pub fn render(drv: &Derivation) -> Result<Output, RenderError> {
    let inputs = drv.inputs();
    let manifest = serde_json::to_string_pretty(&crate::store::hash::sorted_json(inputs))
        .map_err(|e| RenderError(e.to_string()))?;
    let mut entries = BTreeMap::from([(
        MANIFEST.to_string(),
        Output::File((manifest + "\n").into_bytes()),
    )]);
    let outputs = inputs["outputs"]
        .as_object()
        .ok_or_else(|| RenderError("bottle inputs have no outputs".into()))?;
    for (link, target) in outputs {
        let target = target
            .as_str()
            .ok_or_else(|| RenderError(format!("output {link} is not a store name")))?;
        entries.insert(link.clone(), Output::Symlink(format!("../{target}")));
    }
    Ok(Output::Dir(entries))
}
