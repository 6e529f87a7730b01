//! The guest root of a bottle whose image bottle builds (`dir`, `debian`):
//! the base tree's derivation, then one `rootfs` derivation (an erofs image)
//! with the bottle's `files` and the agent's user in it. The realizer
//! attaches that image as the guest's read-only root disk.

use crate::image::{debian, root, tree};
use crate::schema::{Bottle, GuestFile, Image};
use crate::store::{Derivation, GUEST_STORE};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The link name of the root image in a bottle's directory.
pub const LINK: &str = root::NAME;

/// The base tree's derivation for an image bottle builds; `None` for
/// images it does not (busybox is assembled at run time; an OCI reference
/// by tag that no lock pinned is refused).
pub fn base(image: &Image) -> Option<Arc<Derivation>> {
    match image {
        Image::Dir { path, tree } => {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "rootfs".into());
            Some(tree::source(&name, path, tree))
        }
        // Locked (`bottle.lock`): one fetch per `.deb`, the tree from those.
        Image::Debian {
            suite,
            packages,
            mirror,
            closure,
        } => debian::debian(suite, packages, mirror, closure).ok(),
        Image::OciLocal {
            format,
            path,
            tree,
            reference,
        } => {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_else(|| "image".into());
            let source = tree::source(&name, path, tree);
            Some(crate::image::oci::unpack(
                format,
                source,
                reference.as_deref(),
            ))
        }
        // Pinned by digest (by the recipe, or by `bottle.lock` for a tag): a
        // fixed-output pull, unpacked like a layout. A tag the lock did not
        // pin is not built (`bottle run` says so).
        Image::Oci(reference) => {
            let pulled = crate::image::pull::pull(reference)?;
            Some(crate::image::oci::unpack(
                "oci-layout",
                pulled,
                Some("image"),
            ))
        }
        Image::Busybox => None,
    }
}

/// The root image of `b`, with its guest files (`files` maps guest paths to
/// their derivations, as lowering made them).
pub fn lower(b: &Bottle, files: &BTreeMap<String, Arc<Derivation>>) -> Option<Arc<Derivation>> {
    let base = base(&b.image)?;
    let mut placed = BTreeMap::new();
    for (guest, drv) in files {
        // A `files` value may name a path inside a derivation's output
        // (`"${pkg}/bin/tool"`): keep the part after the output's name.
        let sub = match b.files.get(guest) {
            Some(GuestFile::Store(path)) => path
                .strip_prefix(&drv.guest_path())
                .map(|rest| rest.trim_start_matches('/').to_string())
                .unwrap_or_default(),
            _ => String::new(),
        };
        placed.insert(guest.clone(), (drv.clone(), sub));
    }
    Some(root::rootfs(root::RootParts {
        base: Some(base),
        files: placed,
        user: b.agent.user.clone(),
        workdir: b.agent.workdir.clone(),
    }))
}

/// The derivation among `refs` whose output holds the guest store path
/// `path` (the output itself or something inside it).
pub fn owner_of<'a>(refs: &'a [Arc<Derivation>], path: &str) -> Option<&'a Arc<Derivation>> {
    if !path.starts_with(GUEST_STORE) {
        return None;
    }
    refs.iter().find(|d| {
        let out = d.guest_path();
        path == out
            || path
                .strip_prefix(out.as_str())
                .is_some_and(|rest| rest.starts_with('/'))
    })
}
