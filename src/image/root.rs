//! The guest's root: one erofs image of a base tree (a `source` directory,
//! a `debian` tree, a fetched tree, or nothing), the agent's user and home,
//! and the bottle's `files` on top. The same inputs give the same bytes:
//! `mkfs.erofs` gets a fixed timestamp (`-T0`), a UUID taken from the
//! derivation's hash (`-U`), no extended attributes (`-x-1`, so the host's
//! security labels never leak in), and a tree whose content and owners are
//! the inputs' alone. The guest mounts it read-only with a tmpfs overlay.

use super::{copy_tree, io, run, store_root};
use crate::store::{Derivation, Kind, Output, RenderError};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

/// The store name of a root image.
pub const NAME: &str = "root.erofs";

/// What a root is made of.
pub struct RootParts {
    /// The base tree's derivation, if any.
    pub base: Option<Arc<Derivation>>,
    /// Guest path → (derivation, path inside its output, "" for the output itself).
    pub files: BTreeMap<String, (Arc<Derivation>, String)>,
    pub user: String,
    pub workdir: String,
}

pub fn rootfs(parts: RootParts) -> Arc<Derivation> {
    let files: serde_json::Map<String, Value> = parts
        .files
        .iter()
        .map(|(guest, (drv, sub))| {
            let name = if sub.is_empty() {
                drv.store_name()
            } else {
                format!("{}/{sub}", drv.store_name())
            };
            (guest.clone(), Value::from(name))
        })
        .collect();
    let inputs = json!({
        "version": 1,
        "base": parts.base.as_ref().map(|d| d.store_name()),
        "files": files,
        "user": parts.user,
        "workdir": parts.workdir,
    });
    let deps = parts
        .base
        .into_iter()
        .chain(parts.files.into_values().map(|(d, _)| d));
    Derivation::new(Kind::Rootfs, NAME, inputs, deps).expect("a fixed name and plain data")
}

pub fn render(drv: &Derivation) -> Result<Output, RenderError> {
    let store = store_root()?;
    let inputs = drv.inputs();
    let scratch = crate::store::scratch_dir().map_err(io("making a scratch directory"))?;
    let tree = scratch.path().join("root");
    match inputs["base"].as_str() {
        // Hard links into the store: nothing below changes a file in place
        // (files are replaced, directories are the copy's own), and
        // mkfs.erofs counts links within the tree only.
        Some(base) => run(Command::new("cp")
            .arg("-al")
            .arg("--")
            .arg(store.join(base))
            .arg(&tree))
        .or_else(|_| {
            let _ = crate::store::output::remove_all(&tree);
            copy_tree(&store.join(base), &tree)
        })?,
        None => fs::create_dir(&tree).map_err(io("making the root"))?,
    }
    fs::set_permissions(&tree, fs::Permissions::from_mode(0o755)).map_err(io("the root"))?;
    for (dir, mode) in [
        ("proc", 0o555),
        ("sys", 0o555),
        ("dev", 0o755),
        ("run", 0o755),
        ("tmp", 0o1777),
        ("etc", 0o755),
    ] {
        let path = tree.join(dir);
        if !path.exists() {
            fs::create_dir(&path).map_err(io(format!("making /{dir}")))?;
            fs::set_permissions(&path, fs::Permissions::from_mode(mode))
                .map_err(io(format!("/{dir}")))?;
        }
    }
    let user = inputs["user"].as_str().unwrap_or("root");
    let workdir = inputs["workdir"].as_str().unwrap_or("");
    let (uid, gid, home) = add_user(&tree, user)?;
    if !workdir.is_empty() {
        make_dirs(&tree, workdir, uid, gid)?;
    }
    let files = inputs["files"].as_object().cloned().unwrap_or_default();
    for (guest, source) in &files {
        let source = store.join(source.as_str().unwrap_or_default());
        // Files in the agent's home belong to the agent; the rest to root.
        let (owner, group) = if home != "/" && Path::new(guest).starts_with(&home) {
            (uid, gid)
        } else {
            (0, 0)
        };
        place(&tree, guest, &source, owner, group)?;
    }
    let out = crate::store::staging_path(NAME);
    let uuid = uuid_of(drv);
    let mut mkfs = Command::new("mkfs.erofs");
    mkfs.args(["--quiet", "-T0", "-x-1"])
        .arg(format!("-U{uuid}"))
        .env("SOURCE_DATE_EPOCH", "0");
    if !nix::unistd::geteuid().is_root() {
        // Without root the tree's owners are the builder's: make them root's.
        mkfs.arg("--all-root");
    }
    mkfs.arg(&out).arg(&tree);
    if let Err(e) = run(&mut mkfs) {
        let _ = fs::remove_file(&out);
        return Err(e);
    }
    fs::set_permissions(&out, fs::Permissions::from_mode(0o444)).map_err(io("the image"))?;
    Ok(Output::Staged(out))
}

/// A UUID from the derivation's hash: fixed for the same inputs.
fn uuid_of(drv: &Derivation) -> String {
    let hex = blake3::hash(drv.hash().to_string().as_bytes()).to_hex();
    let h = &hex.as_str()[..32];
    format!(
        "{}-{}-4{}-8{}-{}",
        &h[0..8],
        &h[8..12],
        &h[13..16],
        &h[17..20],
        &h[20..32]
    )
}

/// Make sure `user` exists in the tree's `/etc/passwd` (as 1000:1000 when
/// added), with its home; its uid, gid and home.
fn add_user(tree: &Path, user: &str) -> Result<(u32, u32, String), RenderError> {
    if user.is_empty() || user == "root" {
        return Ok((0, 0, "/root".into()));
    }
    if let Some((uid, gid)) = numeric(user) {
        return Ok((uid, gid, "/".into()));
    }
    let passwd_path = tree.join("etc/passwd");
    let passwd = fs::read_to_string(&passwd_path).unwrap_or_default();
    let passwd = if passwd.is_empty() {
        "root:x:0:0:root:/root:/bin/sh\n".to_string()
    } else {
        passwd
    };
    if let Some(line) = passwd.lines().find(|l| l.split(':').next() == Some(user)) {
        let fields: Vec<&str> = line.split(':').collect();
        let uid = fields.get(2).and_then(|f| f.parse().ok()).unwrap_or(0);
        let gid = fields.get(3).and_then(|f| f.parse().ok()).unwrap_or(0);
        let home = fields.get(5).unwrap_or(&"/").to_string();
        make_dirs(tree, &home, uid, gid)?;
        return Ok((uid, gid, home));
    }
    let (uid, gid) = (1000, 1000);
    let home = format!("/home/{user}");
    let shell = if tree.join("bin/bash").exists() {
        "/bin/bash"
    } else {
        "/bin/sh"
    };
    let mut passwd = passwd;
    if !passwd.ends_with('\n') {
        passwd.push('\n');
    }
    passwd.push_str(&format!("{user}:x:{uid}:{gid}:{user}:{home}:{shell}\n"));
    write_keep_mode(&passwd_path, &passwd, 0o644)?;
    let group_path = tree.join("etc/group");
    let mut group = fs::read_to_string(&group_path).unwrap_or_else(|_| "root:x:0:\n".into());
    if !group.lines().any(|l| l.split(':').next() == Some(user)) {
        if !group.ends_with('\n') {
            group.push('\n');
        }
        group.push_str(&format!("{user}:x:{gid}:\n"));
        write_keep_mode(&group_path, &group, 0o644)?;
    }
    let shadow = tree.join("etc/shadow");
    if let Ok(mut text) = fs::read_to_string(&shadow) {
        if !text.ends_with('\n') && !text.is_empty() {
            text.push('\n');
        }
        text.push_str(&format!("{user}:!:0:0:99999:7:::\n"));
        write_keep_mode(&shadow, &text, 0o640)?;
    }
    make_dirs(tree, &home, uid, gid)?;
    Ok((uid, gid, home))
}

fn numeric(user: &str) -> Option<(u32, u32)> {
    let (uid, gid) = user.split_once(':').unwrap_or((user, user));
    Some((uid.parse().ok()?, gid.parse().ok()?))
}

fn write_keep_mode(path: &Path, text: &str, default_mode: u32) -> Result<(), RenderError> {
    let mode = fs::metadata(path)
        .map(|m| m.permissions().mode() & 0o7777)
        .unwrap_or(default_mode);
    let _ = fs::remove_file(path);
    fs::write(path, text).map_err(io(format!("writing {}", path.display())))?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .map_err(io(format!("{}", path.display())))
}

/// Create the guest directory `guest` (and missing parents, root's) in the
/// tree; the last one is owned by `uid:gid`.
fn make_dirs(tree: &Path, guest: &str, uid: u32, gid: u32) -> Result<(), RenderError> {
    let path = inside(tree, guest)?;
    if path.exists() {
        return Ok(());
    }
    fs::create_dir_all(&path).map_err(io(format!("making {guest}")))?;
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).map_err(io(guest.to_string()))?;
    chown(&path, uid, gid)
}

fn chown(path: &Path, uid: u32, gid: u32) -> Result<(), RenderError> {
    if !nix::unistd::geteuid().is_root() {
        return Ok(());
    }
    std::os::unix::fs::lchown(path, Some(uid), Some(gid))
        .map_err(io(format!("chown {}", path.display())))
}

/// The host path of guest path `guest` in the tree; refuses to leave it
/// (no `..`; symlinks in the tree are not followed for the parents we make).
fn inside(tree: &Path, guest: &str) -> Result<PathBuf, RenderError> {
    let rel = guest.trim_start_matches('/');
    if rel.split('/').any(|c| c == ".." || c == ".") {
        return Err(RenderError(format!(
            "`{guest}` is not a normalized guest path"
        )));
    }
    Ok(tree.join(rel))
}

/// Put the store output (or part of one) `source` at guest path `guest`.
fn place(tree: &Path, guest: &str, source: &Path, uid: u32, gid: u32) -> Result<(), RenderError> {
    let dest = inside(tree, guest)?;
    // Parents: missing ones are made, owned like the file when under its owner's home.
    let mut missing = Vec::new();
    let mut parent = dest.parent();
    while let Some(p) = parent {
        if p.symlink_metadata().is_ok() || p == tree {
            break;
        }
        missing.push(p.to_path_buf());
        parent = p.parent();
    }
    for dir in missing.iter().rev() {
        fs::create_dir(dir).map_err(io(format!("making {}", dir.display())))?;
        fs::set_permissions(dir, fs::Permissions::from_mode(0o755))
            .map_err(io(format!("{}", dir.display())))?;
        chown(dir, uid, gid)?;
    }
    if dest.symlink_metadata().is_ok() {
        crate::store::output::remove_all(&dest).map_err(io(format!("replacing {guest}")))?;
    }
    let meta = fs::symlink_metadata(source)
        .map_err(io(format!("the content of {guest} ({})", source.display())))?;
    if meta.is_dir() {
        copy_tree(source, &dest)?;
        run(Command::new("chown")
            .arg("-R")
            .arg("--no-dereference")
            .arg(format!("{uid}:{gid}"))
            .arg(&dest))
        .or_else(|e| {
            if nix::unistd::geteuid().is_root() {
                Err(e)
            } else {
                Ok(())
            }
        })?;
        return Ok(());
    }
    if meta.file_type().is_symlink() {
        let target = fs::read_link(source).map_err(io(format!("{}", source.display())))?;
        std::os::unix::fs::symlink(target, &dest).map_err(io(format!("linking {guest}")))?;
        return chown(&dest, uid, gid);
    }
    fs::copy(source, &dest).map_err(io(format!("copying {guest}")))?;
    // Store files are read-only; in the guest a file is its owner's to
    // change, and keeps being a program if it was one.
    let mode = if meta.permissions().mode() & 0o111 != 0 {
        0o755
    } else {
        0o644
    };
    fs::set_permissions(&dest, fs::Permissions::from_mode(mode)).map_err(io(guest.to_string()))?;
    chown(&dest, uid, gid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_is_well_formed_and_fixed() {
        let a = rootfs(RootParts {
            base: None,
            files: BTreeMap::new(),
            user: "agent".into(),
            workdir: "/work".into(),
        });
        let u = uuid_of(&a);
        assert_eq!(u.len(), 36);
        assert_eq!(u, uuid_of(&a));
    }
}
