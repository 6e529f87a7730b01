//! Guest images: the derivation kinds that make a root file system, and
//! the fixed-output fetches they start from.
//!
//! - `source`: a host directory (`{ dir = ./rootfs; }`) copied into the
//!   store by content (`tree.rs`);
//! - `fetch`: `builtins.fetchurl` / `fetchTarball` (and the stdlib's npm
//!   fetcher), the only kind that touches the network, checked against the
//!   SRI hash it declares (`fetch.rs`);
//! - `debian`: a Debian tree from a suite and package names, built by
//!   `mmdebstrap` with `SOURCE_DATE_EPOCH` and without host files (`debian.rs`);
//! - `rootfs`: one deterministic erofs image of a base tree, the bottle's
//!   `files` and the agent's user, which the guest mounts read-only under a
//!   tmpfs overlay (`root.rs`).
//!
//! Every renderer here runs inside a store build (see
//! [`crate::store::building_in`]): it reads its dependencies' outputs from
//! that store and stages its own output beside it.

pub mod debian;
pub mod fetch;
pub mod root;
pub mod tree;

use crate::store::{Derivation, Kind, Output, RenderError};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Render one of this module's kinds.
pub fn render(drv: &Derivation) -> Result<Output, RenderError> {
    match drv.kind() {
        Kind::Source => tree::render(drv),
        Kind::Fetch => fetch::render(drv),
        Kind::Debian => debian::render(drv),
        Kind::Rootfs => root::render(drv),
        other => Err(RenderError(format!("{other} is not an image kind"))),
    }
}

/// The store the current build writes into.
fn store_root() -> Result<PathBuf, RenderError> {
    crate::store::building_in()
        .ok_or_else(|| RenderError("an image can only be rendered inside a store build".into()))
}

/// Run a host tool; its stderr's tail on failure.
fn run(command: &mut Command) -> Result<(), RenderError> {
    let program = command.get_program().to_string_lossy().into_owned();
    let output = command
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| {
            RenderError(format!(
                "cannot run `{program}`: {e} (is it installed? scripts/setup installs it)"
            ))
        })?;
    if output.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let text = if stderr.trim().is_empty() {
        stdout
    } else {
        stderr
    };
    let tail: Vec<&str> = text.lines().rev().take(12).collect();
    let tail: Vec<&str> = tail.into_iter().rev().collect();
    Err(RenderError(format!(
        "`{program}` failed ({}):\n{}",
        output.status,
        tail.join("\n")
    )))
}

/// Copy a tree (or file) with owners, modes, links and hard links kept.
fn copy_tree(from: &Path, to: &Path) -> Result<(), RenderError> {
    run(Command::new("cp")
        .arg("-a")
        .arg("--reflink=auto")
        .arg("--")
        .arg(from)
        .arg(to))
}

fn io(what: impl std::fmt::Display) -> impl FnOnce(std::io::Error) -> RenderError {
    move |e| RenderError(format!("{what}: {e}"))
}
