//! Host trees by content: `{ dir = ./rootfs; }` names a directory on the
//! host; its content hash (names, kinds, permission bits, bytes, link
//! targets — not owners or times) is what the derivation holds, so the
//! store path is the same wherever the directory is. The host path is
//! remembered in this process only, to copy from when the path is built.

use super::{io, run};
use crate::store::{Derivation, Kind, Output, RenderError};
use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, OnceLock};

const TREE_DOMAIN: &str = "bottle-tree-v1";

/// The content hash of the tree at `path` (hex blake3).
pub fn hash_tree(path: &Path) -> std::io::Result<String> {
    let mut hasher = blake3::Hasher::new();
    hasher.update(TREE_DOMAIN.as_bytes());
    hash_entry(&mut hasher, path)?;
    Ok(hasher.finalize().to_hex().to_string())
}

fn hash_entry(h: &mut blake3::Hasher, path: &Path) -> std::io::Result<()> {
    let meta = fs::symlink_metadata(path)?;
    let kind = meta.file_type();
    let mode = meta.permissions().mode() & 0o7777;
    if kind.is_symlink() {
        let target = fs::read_link(path)?;
        let bytes = target.as_os_str().as_encoded_bytes();
        h.update(b"L");
        h.update(&(bytes.len() as u64).to_be_bytes());
        h.update(bytes);
    } else if kind.is_file() {
        h.update(b"F");
        h.update(&mode.to_be_bytes());
        h.update(&meta.len().to_be_bytes());
        let copied = std::io::copy(&mut fs::File::open(path)?, h)?;
        if copied != meta.len() {
            return Err(std::io::Error::other(format!(
                "{} changed while it was read",
                path.display()
            )));
        }
    } else if kind.is_dir() {
        let mut names: Vec<std::ffi::OsString> = fs::read_dir(path)?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<Result<_, _>>()?;
        names.sort_by(|a, b| a.as_encoded_bytes().cmp(b.as_encoded_bytes()));
        h.update(b"D");
        h.update(&mode.to_be_bytes());
        h.update(&(names.len() as u64).to_be_bytes());
        for name in names {
            let bytes = name.as_encoded_bytes();
            h.update(&(bytes.len() as u64).to_be_bytes());
            h.update(bytes);
            hash_entry(h, &path.join(&name))?;
        }
    } else {
        return Err(std::io::Error::other(format!(
            "{} is a device, socket or fifo; an image directory holds files, directories and links",
            path.display()
        )));
    }
    Ok(())
}

fn sources() -> &'static Mutex<HashMap<String, PathBuf>> {
    static SOURCES: OnceLock<Mutex<HashMap<String, PathBuf>>> = OnceLock::new();
    SOURCES.get_or_init(Default::default)
}

/// The `source` derivation of a host directory whose content hash is `tree`
/// (from [`hash_tree`]), remembering where it is for the build.
pub fn source(name: &str, host: &Path, tree: &str) -> Arc<Derivation> {
    sources()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(tree.to_string(), host.to_path_buf());
    Derivation::new(
        Kind::Source,
        store_name(name),
        serde_json::json!({ "tree": tree }),
        [],
    )
    .expect("a cleaned name and a hex string")
}

/// A store name from a host directory's base name.
pub fn store_name(name: &str) -> String {
    let clean: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "+-._?=".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    let clean = clean.trim_start_matches('.').to_string();
    if clean.is_empty() {
        "source".into()
    } else {
        clean.chars().take(100).collect()
    }
}

pub fn render(drv: &Derivation) -> Result<Output, RenderError> {
    let tree = drv.inputs()["tree"]
        .as_str()
        .ok_or_else(|| RenderError("source inputs have no `tree`".into()))?;
    let host = sources()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(tree)
        .cloned()
        .ok_or_else(|| {
            RenderError(format!(
                "no directory with content {tree} was read by this build (build the recipe again)"
            ))
        })?;
    let staged = crate::store::staging_path(drv.name());
    // Owners are not part of a source's content: the copy belongs to the builder.
    run(Command::new("cp")
        .args(["-a", "--no-preserve=ownership", "--reflink=auto", "--"])
        .arg(&host)
        .arg(&staged))?;
    let got = hash_tree(&staged).map_err(io(format!("reading the copy of {}", host.display())));
    match got {
        Ok(got) if got == tree => Ok(Output::Staged(staged)),
        Ok(_) => {
            let _ = crate::store::output::remove_all(&staged);
            Err(RenderError(format!(
                "{} changed between reading the recipe and building",
                host.display()
            )))
        }
        Err(e) => {
            let _ = crate::store::output::remove_all(&staged);
            Err(e)
        }
    }
}
