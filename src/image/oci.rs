//! Local OCI images: `{ oci-layout = ./dir; }` (an OCI image layout
//! directory) and `{ oci-archive = ./image.tar; }` (the same as one tar).
//! The layout or archive is a `source` (copied into the store by content);
//! this kind unpacks it into a root tree: `skopeo copy` normalizes it into a
//! fresh layout, and `layers.rs` applies the layers in order (each blob
//! checked against its digest) with whiteouts and opaque directories,
//! owners, modes, symlinks and hard links. A pulled layout is read in place.

use super::{io, run, store_root};
use crate::store::{Derivation, Kind, Output, RenderError};
use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::sync::Arc;

/// The `oci` derivation unpacking `source` (an `oci-layout` directory or an
/// `oci-archive` tar); `reference` picks one image of several by its
/// `org.opencontainers.image.ref.name` (the tag).
pub fn unpack(format: &str, source: Arc<Derivation>, reference: Option<&str>) -> Arc<Derivation> {
    Derivation::new(
        Kind::Oci,
        format!("{}-rootfs", source.name()),
        serde_json::json!({
            "format": format,
            "source": source.store_name(),
            "reference": reference,
        }),
        [source],
    )
    .expect("a valid name and plain data")
}

pub fn render(drv: &Derivation) -> Result<Output, RenderError> {
    let store = store_root()?;
    let inputs = drv.inputs();
    let format = inputs["format"].as_str().unwrap_or_default();
    let source = store.join(inputs["source"].as_str().unwrap_or_default());
    let transport = match format {
        "oci-layout" => "oci",
        "oci-archive" => "oci-archive",
        other => return Err(RenderError(format!("`{other}` is not an OCI image format"))),
    };
    let mut from = format!("{transport}:{}", source.display());
    if let Some(reference) = inputs["reference"].as_str() {
        from.push(':');
        from.push_str(reference);
    }
    // A pulled layout is skopeo's own output, in the store: read in place.
    // A local layout or archive is normalized into a fresh layout by a
    // skopeo copy first (which also picks the image `reference` names).
    let pulled = drv
        .deps()
        .first()
        .is_some_and(|d| d.kind() == Kind::OciPull);
    let scratch = crate::store::scratch_dir().map_err(io("making a scratch directory"))?;
    let layout =
        if pulled && format == "oci-layout" && inputs["reference"].as_str() == Some("image") {
            source
        } else {
            let layout = scratch.path().join("layout");
            run(Command::new("skopeo")
                .args(["--insecure-policy", "copy", "--quiet"])
                .arg(&from)
                .arg(format!("oci:{}:image", layout.display())))
            .map_err(|e| RenderError(format!("reading the image {from}: {}", e.0)))?;
            layout
        };
    let staged = crate::store::staging_path(drv.name());
    std::fs::create_dir(&staged).map_err(io("staging the root"))?;
    std::fs::set_permissions(&staged, std::fs::Permissions::from_mode(0o755))
        .map_err(io("staging the root"))?;
    if let Err(e) = super::layers::unpack(&layout, "image", &staged) {
        let _ = crate::store::output::remove_all(&staged);
        return Err(RenderError(format!("unpacking the image: {e}")));
    }
    Ok(Output::Staged(staged))
}
