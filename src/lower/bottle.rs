//! The top-level bottle derivation: a directory with `manifest.json` and a
//! relative link to each of the bottle's outputs (`smolfile.toml -> ../<hash>-smolfile.toml`).
//! The manifest names the outputs and says what no output says (the image,
//! the guest files, the secrets' names); the outputs say the rest — the
//! agent and the VM's size (`smolfile.toml`), the network (`gvproxy.yaml`),
//! the sidecars' ports (`ports.json`), their policies — and `bottle run`
//! reads them from the store, never the recipe (see `realize::plan`).

use crate::schema::{Bottle, Image};
use crate::store::{Derivation, Kind, Output, RenderError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The manifest's file name inside a bottle's store path.
pub const MANIFEST: &str = "manifest.json";

/// The manifest format this version of bottle writes and reads.
pub const MANIFEST_VERSION: u32 = 2;

/// `manifest.json`, typed (see docs/store.md). Store names are relative to
/// the store directory the bottle is in.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub version: u32,
    pub name: String,
    pub image: ManifestImage,
    /// Names of the bottle's secrets (their references are in `egress.yaml`).
    pub secrets: Vec<String>,
    /// Output link name (`egress.yaml`, …) → store name.
    pub outputs: BTreeMap<String, String>,
    /// Guest path → store name of the file to place there.
    pub files: BTreeMap<String, String>,
    /// Store names to make visible in the guest under `/bottle/store/`.
    pub guest_store: Vec<String>,
}

/// Where the guest's root file system comes from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub enum ManifestImage {
    /// Assembled by the realizer from the host's static busybox.
    Busybox,
    /// An OCI image reference by tag that no lock pinned, which `bottle run` refuses.
    Oci(String),
    /// A root image bottle built (`root.erofs`, also an output), by store name.
    Root(String),
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
        let manifest: Manifest = serde_json::from_str(&text).map_err(|e| {
            miette::miette!(
                help = "rebuild the bottle with this version of bottle",
                "{} is not a bottle manifest of this version: {e}",
                path.display()
            )
        })?;
        if manifest.version != MANIFEST_VERSION {
            return Err(miette::miette!(
                help = "rebuild the bottle with this version of bottle",
                "{} has manifest version {}; this bottle reads version {MANIFEST_VERSION}",
                path.display(),
                manifest.version
            ));
        }
        Ok(manifest)
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
    // Everything the guest must see under /bottle/store: the guest files and
    // whatever the bottle's strings mention, with their own dependencies.
    let guest_roots: Vec<Arc<Derivation>> = parts
        .files
        .values()
        .cloned()
        .chain(bottle.refs.iter().cloned())
        .collect();
    let manifest = Manifest {
        version: MANIFEST_VERSION,
        name: bottle.name.clone(),
        // A root image bottle built is one of the outputs; the rest are
        // realized (busybox) or refused (OCI references by tag) by `bottle run`.
        image: match (
            parts
                .outputs
                .iter()
                .find(|(link, _)| *link == super::image::LINK),
            &bottle.image,
        ) {
            (Some((_, root)), _) => ManifestImage::Root(root.store_name()),
            (None, Image::Oci(r)) => ManifestImage::Oci(r.clone()),
            (None, _) => ManifestImage::Busybox,
        },
        secrets: bottle.secrets.keys().cloned().collect(),
        outputs: parts
            .outputs
            .iter()
            .map(|(link, d)| (link.to_string(), d.store_name()))
            .collect(),
        files: parts
            .files
            .iter()
            .map(|(guest, d)| (guest.clone(), d.store_name()))
            .collect(),
        guest_store: crate::store::derivation::closure_of(&guest_roots)
            .iter()
            .map(|d| d.store_name())
            .collect(),
    };
    let inputs = serde_json::to_value(&manifest).expect("the manifest is plain data");
    let deps = parts.outputs.into_iter().map(|(_, d)| d).chain(guest_roots);
    Derivation::new(Kind::Bottle, bottle.name.clone(), inputs, deps)
        .expect("a bottle's name is a valid slug and its inputs plain data")
}

pub fn render(drv: &Derivation) -> Result<Output, RenderError> {
    let manifest: Manifest = serde_json::from_value(drv.inputs().clone())
        .map_err(|e| RenderError(format!("bottle inputs: {e}")))?;
    let text = serde_json::to_string_pretty(&crate::store::hash::sorted_json(drv.inputs()))
        .map_err(|e| RenderError(e.to_string()))?;
    let mut entries = BTreeMap::from([(
        MANIFEST.to_string(),
        Output::File((text + "\n").into_bytes()),
    )]);
    for (link, target) in &manifest.outputs {
        entries.insert(link.clone(), Output::Symlink(format!("../{target}")));
    }
    Ok(Output::Dir(entries))
}
