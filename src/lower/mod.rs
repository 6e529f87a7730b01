//! Lowering: a typed [`Bottle`] becomes its derivation graph, one file per
//! output kind (`smolfile.rs`, `gvproxy.rs`, `ports.rs`, `egress.rs`,
//! `git_gate.rs`, `file.rs`, and `bottle.rs` on top). Each kind has a
//! `lower` (typed bottle → canonical inputs) and a `render` (inputs →
//! bytes); rendering reads nothing but the inputs, so a hash always names
//! the same bytes. Nothing here varies per run or per machine.

pub mod bottle;
pub mod egress;
pub mod file;
pub mod git_gate;
pub mod gvproxy;
pub mod image;
pub mod network;
pub mod ports;
pub mod smolfile;

use crate::schema::{Bottle, GuestFile};
use crate::store::{Derivation, Kind, Output, RenderError};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The bottle's derivation; its dependencies are the rest of the graph.
pub fn lower(b: &Bottle) -> Arc<Derivation> {
    let mut outputs = vec![
        ("smolfile.toml", smolfile::lower(b)),
        ("gvproxy.yaml", gvproxy::lower()),
        ("ports.json", ports::lower(b)),
        ("egress.yaml", egress::lower(b)),
    ];
    if let Some(gate) = git_gate::lower(b) {
        outputs.push(("git-gate.toml", gate));
    }
    let mut files = BTreeMap::new();
    for (guest, content) in &b.files {
        let drv = match content {
            GuestFile::Text(text) => file::text_file(&file_name(guest), text, [])
                .expect("file_name makes a valid store name and text is a string"),
            GuestFile::Store(path) => match image::owner_of(&b.refs, path) {
                Some(d) => d.clone(),
                // A store path the checker did not see as a derivation: keep
                // it as text naming the path, which is what the recipe said.
                None => file::text_file(&file_name(guest), path, []).expect("valid name"),
            },
        };
        files.insert(guest.clone(), drv);
    }
    if let Some(root) = image::lower(b, &files) {
        outputs.push((image::LINK, root));
    }
    bottle::lower(b, bottle::Parts { outputs, files })
}

/// A store name for a guest file: its base name, cleaned.
fn file_name(guest: &str) -> String {
    let base = guest.rsplit('/').next().unwrap_or(guest);
    let clean: String = base
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "+-._?=".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect();
    let clean = clean.trim_start_matches('.');
    if clean.is_empty() {
        "file".to_string()
    } else {
        clean.chars().take(200).collect()
    }
}

/// Render any derivation bottle knows how to build.
pub fn render(drv: &Derivation) -> Result<Output, RenderError> {
    match drv.kind() {
        Kind::File => file::render(drv),
        Kind::Smolfile => smolfile::render(drv),
        Kind::GvproxyConfig => gvproxy::render(drv),
        Kind::PortMap => ports::render(drv),
        Kind::EgressPolicy => egress::render(drv),
        Kind::GitGateConfig => git_gate::render(drv),
        Kind::Bottle => bottle::render(drv),
        Kind::Source | Kind::Fetch | Kind::Debian | Kind::Rootfs | Kind::Oci | Kind::OciPull => {
            crate::image::render(drv)
        }
    }
}
