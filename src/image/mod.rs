//! Guest images: the derivation kinds that make a root file system, and
//! the fixed-output fetches they start from.
//!
//! - `source`: a host directory (`{ dir = ./rootfs; }`) copied into the
//!   store by content (`tree.rs`);
//! - `fetch`: `builtins.fetchurl` / `fetchTarball` (and the stdlib's npm
//!   fetcher), the only kind that touches the network, checked against the
//!   SRI hash it declares (`fetch.rs`);
//! - `debian`: a Debian tree from the `.deb`s `bottle.lock` pins (each a
//!   `fetch`), built by `mmdebstrap` from those files only with
//!   `SOURCE_DATE_EPOCH` and without host files (`debian.rs`);
//! - `oci-pull`: an OCI reference pinned by digest (by the recipe or by
//!   `bottle.lock`), pulled into a layout (`pull.rs`, fixed-output like `fetch`);
//!
//! `lock.rs` is `bottle.lock`: the tags' digests and the Debian closures.
//! - `oci`: an OCI image layout or archive, unpacked (`oci.rs`; the layers
//!   applied in process by `layers.rs`);
//! - `rootfs`: one deterministic erofs image of a base tree, the bottle's
//!   `files` and the agent's user, which the guest mounts read-only under a
//!   tmpfs overlay (`root.rs`).
//!
//! Every renderer here runs inside a store build (see
//! [`crate::store::building_in`]): it reads its dependencies' outputs from
//! that store and stages its own output beside it.

pub mod debian;
pub mod fetch;
pub mod layers;
pub mod lock;
pub mod oci;
pub mod pull;
pub mod root;
pub mod tree;

use crate::store::{Derivation, Kind, Output, RenderError};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Render one of this module's kinds.
pub fn render(drv: &Derivation) -> Result<Output, RenderError> {
    match drv.kind() {
        Kind::Source => tree::render(drv),
        Kind::Fetch => cached(drv, fetch::render),
        Kind::Debian => cached(drv, debian::render),
        Kind::Rootfs => root::render(drv),
        Kind::Oci => oci::render(drv),
        Kind::OciPull => cached(drv, pull::render),
        other => Err(RenderError(format!("{other} is not an image kind"))),
    }
}

/// The shared cache of fetched and Debian outputs, if `BOTTLE_CACHE` names
/// one: a directory of `<hash>-<name>` entries like a store's, consulted
/// before fetching and filled after, so many stores (tests, users with
/// several) fetch and bootstrap once. Entries are outputs of the same
/// derivations, so they are interchangeable with a fresh build.
fn cache_dir() -> Option<PathBuf> {
    std::env::var_os("BOTTLE_CACHE")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
}

fn cached(
    drv: &Derivation,
    build: fn(&Derivation) -> Result<Output, RenderError>,
) -> Result<Output, RenderError> {
    let Some(cache) = cache_dir() else {
        return build(drv);
    };
    let name = drv.store_name();
    let locks = cache.join(".locks");
    std::fs::create_dir_all(&locks).map_err(io(format!("making {}", locks.display())))?;
    let lock_path = locks.join(format!("{name}.lock"));
    let lock_file = std::fs::File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(io(format!("opening {}", lock_path.display())))?;
    // Held until this function returns: one builder per entry at a time.
    let _lock = nix::fcntl::Flock::lock(lock_file, nix::fcntl::FlockArg::LockExclusive)
        .map_err(|(_, e)| RenderError(format!("locking {}: {e}", lock_path.display())))?;
    let entry = cache.join(&name);
    let staged = crate::store::staging_path(drv.name());
    if entry.symlink_metadata().is_ok() {
        copy_tree(&entry, &staged)?;
        return Ok(Output::Staged(staged));
    }
    let output = build(drv)?;
    if let Output::Staged(path) = &output {
        let temp = cache.join(format!(".{name}.{}", std::process::id()));
        let _ = crate::store::output::remove_all(&temp);
        if copy_tree(path, &temp).is_ok() {
            let _ = std::fs::rename(&temp, &entry);
        }
        let _ = crate::store::output::remove_all(&temp);
    }
    Ok(output)
}

/// The store the current build writes into.
fn store_root() -> Result<PathBuf, RenderError> {
    crate::store::building_in()
        .ok_or_else(|| RenderError("an image can only be rendered inside a store build".into()))
}

/// curl as every fetch runs it: failing on HTTP errors, quiet but for them,
/// following redirects over http(s) only. Timeouts and the target are the
/// caller's.
fn curl() -> Command {
    let mut command = Command::new("curl");
    command.args([
        "--fail",
        "--silent",
        "--show-error",
        "--location",
        "--proto",
        "=http,https",
    ]);
    command
}

/// Run a host tool; its stderr's tail on failure.
fn run(command: &mut Command) -> Result<(), RenderError> {
    run_output(command).map(drop)
}

/// Run a host tool; its stdout, or its stderr's tail on failure.
fn run_output(command: &mut Command) -> Result<Vec<u8>, RenderError> {
    let program = command.get_program().to_string_lossy().into_owned();
    // SAFETY: the closure runs in the forked child before exec and only
    // calls prctl(2), which is async-signal-safe and allocates nothing.
    unsafe {
        command.pre_exec(|| {
            // A killed build takes its tools with it (mmdebstrap, curl, cp).
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    let output = command
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| {
            RenderError(format!(
                "cannot run `{program}`: {e} (is it installed? scripts/setup installs it)"
            ))
        })?;
    if output.status.success() {
        return Ok(output.stdout);
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
