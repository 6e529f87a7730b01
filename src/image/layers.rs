//! An OCI image's layers applied to a root tree, in process.
//!
//! The image is read from an OCI layout (`index.json`, `blobs/sha256/…`):
//! the manifest its `org.opencontainers.image.ref.name` names (an index is
//! resolved for linux/amd64), checked against its digest, then each layer
//! in order: its blob is hashed as it is read and must match the digest the
//! manifest gives, decompressed (gzip, zstd or none, known by its first
//! bytes) and its tar entries applied as the OCI image spec says:
//!
//! - `.wh.NAME` removes `NAME` as the lower layers made it;
//! - `.wh..wh..opq` in a directory removes what the lower layers put in it;
//! - an entry replaces what is at its path, except that a directory over a
//!   directory keeps the lower one's content;
//! - owners (when building as root), modes, symlinks, hard links, fifos and
//!   devices are kept; times and extended attributes are not (the root
//!   image gets fixed times and no xattrs anyway).
//!
//! Every path is resolved inside the root with `openat2(RESOLVE_IN_ROOT)`,
//! so neither a `..` nor a symlink a lower layer planted (`etc -> /etc`)
//! can make an entry land outside the tree being built.

use oci_spec::image::{Descriptor, ImageIndex, ImageManifest};
use rustix::fs::{AtFlags, FileType, Mode, OFlags, ResolveFlags};
use rustix::io::Errno;
use sha2::Digest as _;
use std::collections::HashSet;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};

const REF_NAME: &str = "org.opencontainers.image.ref.name";
const WHITEOUT: &str = ".wh.";
const OPAQUE: &str = ".wh..wh..opq";

/// Apply the layers of the image `reference` names in the layout at
/// `layout` to the directory `root` (empty, made by the caller).
pub fn unpack(layout: &Path, reference: &str, root: &Path) -> Result<(), String> {
    let index: ImageIndex = serde_json::from_slice(
        &std::fs::read(layout.join("index.json"))
            .map_err(|e| format!("reading the layout's index.json: {e}"))?,
    )
    .map_err(|e| format!("the layout's index.json: {e}"))?;
    let named = index.manifests().iter().find(|d| {
        d.annotations()
            .as_ref()
            .and_then(|a| a.get(REF_NAME))
            .is_some_and(|name| name == reference)
    });
    let descriptor = match (named, index.manifests().as_slice()) {
        (Some(d), _) => d,
        (None, [only]) => only,
        (None, _) => return Err(format!("the layout has no image named `{reference}`")),
    };
    let manifest = manifest_of(layout, descriptor, 0)?;
    let mut tree = Tree::open(root).map_err(|e| format!("opening {}: {e}", root.display()))?;
    for (n, layer) in manifest.layers().iter().enumerate() {
        tree.apply_layer(layout, layer)
            .map_err(|e| format!("layer {} ({}): {e}", n + 1, layer.digest()))?;
    }
    Ok(())
}

/// The image manifest `descriptor` names: itself, or linux/amd64's in the
/// index it names.
fn manifest_of(layout: &Path, descriptor: &Descriptor, depth: u8) -> Result<ImageManifest, String> {
    let bytes = read_blob(layout, descriptor)?;
    let value: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| format!("the manifest is not JSON: {e}"))?;
    if value.get("manifests").is_none() {
        return serde_json::from_value(value).map_err(|e| format!("the image manifest: {e}"));
    }
    let index: ImageIndex =
        serde_json::from_value(value).map_err(|e| format!("the image index: {e}"))?;
    let amd64 = index.manifests().iter().find(|d| {
        d.platform().as_ref().is_some_and(|p| {
            p.os().to_string() == "linux" && p.architecture().to_string() == "amd64"
        })
    });
    match amd64 {
        Some(d) if depth < 4 => manifest_of(layout, d, depth + 1),
        Some(_) => Err("image indexes nest too deeply".into()),
        None => Err("the image index has no linux/amd64 image".into()),
    }
}

/// A blob's path in the layout; only sha256 digests are read.
fn blob_path(layout: &Path, descriptor: &Descriptor) -> Result<(PathBuf, String), String> {
    let digest = descriptor.digest().to_string();
    let hex = digest
        .strip_prefix("sha256:")
        .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or_else(|| format!("`{digest}` is not a sha256 digest"))?;
    Ok((layout.join("blobs/sha256").join(hex), hex.to_string()))
}

/// A small blob (a manifest), checked against its digest.
fn read_blob(layout: &Path, descriptor: &Descriptor) -> Result<Vec<u8>, String> {
    let (path, hex) = blob_path(layout, descriptor)?;
    let bytes = std::fs::read(&path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    let got = hex_of(&sha2::Sha256::digest(&bytes));
    if got != hex {
        return Err(format!(
            "the blob {} does not match its digest (got sha256:{got})",
            descriptor.digest()
        ));
    }
    Ok(bytes)
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A reader that hashes and counts what passes through it.
struct Hashing<R> {
    inner: R,
    hasher: sha2::Sha256,
    read: u64,
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.read += n as u64;
        Ok(n)
    }
}

/// The root being built: a directory opened once, every path resolved
/// beneath it.
struct Tree {
    root: OwnedFd,
    /// Owners are set only when building as root (who alone may).
    owners: bool,
    /// The last parent directory opened, while nothing has been removed.
    parent: Option<(PathBuf, OwnedFd)>,
    /// Paths the current layer made (an opaque directory keeps those).
    made: HashSet<PathBuf>,
    /// Whether the entry being made replaced something.
    replaced: bool,
}

impl Tree {
    fn open(root: &Path) -> io::Result<Tree> {
        Ok(Tree {
            root: rustix::fs::open(
                root,
                OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
                Mode::empty(),
            )?,
            owners: rustix::process::geteuid().is_root(),
            parent: None,
            made: HashSet::new(),
            replaced: false,
        })
    }

    fn apply_layer(&mut self, layout: &Path, layer: &Descriptor) -> Result<(), String> {
        let (path, hex) = blob_path(layout, layer)?;
        let file = File::open(&path).map_err(|e| format!("opening {}: {e}", path.display()))?;
        let mut blob = BufReader::with_capacity(
            1 << 18,
            Hashing {
                inner: file,
                hasher: sha2::Sha256::new(),
                read: 0,
            },
        );
        let magic = blob.fill_buf().map_err(|e| e.to_string())?;
        let tar: Box<dyn Read + '_> = if magic.starts_with(&[0x1f, 0x8b]) {
            Box::new(flate2::bufread::MultiGzDecoder::new(&mut blob))
        } else if magic.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Box::new(
                zstd::stream::read::Decoder::with_buffer(&mut blob).map_err(|e| e.to_string())?,
            )
        } else {
            Box::new(&mut blob)
        };
        self.made.clear();
        self.apply_tar(tar)?;
        // What the archive left unread (padding, the compressor's trailer)
        // is part of the blob.
        io::copy(&mut blob, &mut io::sink()).map_err(|e| e.to_string())?;
        let hashing = blob.into_inner();
        let got = hex_of(&hashing.hasher.finalize());
        if got != hex {
            return Err(format!(
                "the blob does not match its digest (got sha256:{got}); nothing of it is kept"
            ));
        }
        if hashing.read != layer.size() {
            return Err(format!(
                "the blob has {} bytes where the manifest says {}",
                hashing.read,
                layer.size()
            ));
        }
        Ok(())
    }

    fn apply_tar(&mut self, tar: impl Read) -> Result<(), String> {
        let mut archive = tar::Archive::new(tar);
        for entry in archive.entries().map_err(|e| e.to_string())? {
            let mut entry = entry.map_err(|e| format!("reading the layer: {e}"))?;
            let raw = entry.path().map_err(|e| e.to_string())?.into_owned();
            let path = inside(&raw)
                .ok_or_else(|| format!("the entry {} leaves the root", raw.display()))?;
            self.apply_entry(&path, &mut entry)
                .map_err(|e| format!("{}: {e}", path.display()))?;
        }
        Ok(())
    }

    fn apply_entry(&mut self, path: &Path, entry: &mut tar::Entry<impl Read>) -> io::Result<()> {
        let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
            // The root itself: its mode is the root builder's to set.
            return Ok(());
        };
        let name = name.to_os_string();
        if name == OPAQUE {
            return self.make_opaque(parent);
        }
        if let Some(hidden) = name.to_str().and_then(|n| n.strip_prefix(WHITEOUT)) {
            if self.made.contains(&parent.join(hidden)) {
                return Ok(());
            }
            // Nothing to hide in a directory no layer made.
            let dir = match self.resolve(parent) {
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
                other => other?,
            };
            if remove(dir.as_fd(), hidden)? {
                self.parent = None;
            }
            return Ok(());
        }
        let header = entry.header();
        let mode = Mode::from_raw_mode(header.mode()? & 0o7777);
        let owner = self.owners.then(|| {
            (
                rustix::fs::Uid::from_raw(header.uid().unwrap_or(0) as u32),
                rustix::fs::Gid::from_raw(header.gid().unwrap_or(0) as u32),
            )
        });
        let kind = header.entry_type();
        self.made.insert(path.to_path_buf());
        let parent_fd = self.parent_dir(parent)?;
        self.replaced = false;
        self.make(parent_fd.as_fd(), &name, kind, mode, owner, entry)?;
        if !self.replaced {
            self.keep_parent(parent, parent_fd);
        }
        Ok(())
    }

    /// Make the entry `name` of `dir` as `entry` says.
    fn make(
        &mut self,
        dir: BorrowedFd<'_>,
        name: &std::ffi::OsStr,
        kind: tar::EntryType,
        mode: Mode,
        owner: Option<(rustix::fs::Uid, rustix::fs::Gid)>,
        entry: &mut tar::Entry<impl Read>,
    ) -> io::Result<()> {
        use tar::EntryType as T;
        match kind {
            T::Directory => {
                match rustix::fs::mkdirat(dir, name, Mode::from_raw_mode(0o700)) {
                    Err(Errno::EXIST) => {
                        let lower = rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)?;
                        if FileType::from_raw_mode(lower.st_mode) != FileType::Directory {
                            self.replace(dir, name)?;
                            rustix::fs::mkdirat(dir, name, Mode::from_raw_mode(0o700))?;
                        }
                    }
                    other => other?,
                }
                set_owner_and_mode(dir, name, owner, Some(mode))?;
            }
            T::Regular | T::Continuous => {
                let flags = OFlags::WRONLY
                    | OFlags::CREATE
                    | OFlags::EXCL
                    | OFlags::NOFOLLOW
                    | OFlags::CLOEXEC;
                let fd = match rustix::fs::openat(dir, name, flags, Mode::from_raw_mode(0o600)) {
                    Err(Errno::EXIST) => {
                        self.replace(dir, name)?;
                        rustix::fs::openat(dir, name, flags, Mode::from_raw_mode(0o600))?
                    }
                    other => other?,
                };
                let mut file = File::from(fd);
                io::copy(entry, &mut file)?;
                if let Some((uid, gid)) = owner {
                    rustix::fs::fchown(&file, Some(uid), Some(gid))?;
                }
                // After the owner: chown clears set-id bits.
                rustix::fs::fchmod(&file, mode)?;
            }
            T::Symlink => {
                let target = entry
                    .link_name()?
                    .ok_or_else(|| io::Error::other("a symlink without a target"))?
                    .into_owned();
                self.create(dir, name, |dir, name| {
                    rustix::fs::symlinkat(&target, dir, name)
                })?;
                set_owner_and_mode(dir, name, owner, None)?;
            }
            T::Link => {
                let raw = entry
                    .link_name()?
                    .ok_or_else(|| io::Error::other("a hard link without a target"))?
                    .into_owned();
                let target = inside(&raw).ok_or_else(|| {
                    io::Error::other(format!("the link target {} leaves the root", raw.display()))
                })?;
                let (Some(target_dir), Some(target_name)) = (target.parent(), target.file_name())
                else {
                    return Err(io::Error::other("a hard link to the root"));
                };
                let target_dir = self.resolve(target_dir)?;
                self.create(dir, name, |dir, name| {
                    rustix::fs::linkat(&target_dir, target_name, dir, name, AtFlags::empty())
                })?;
            }
            T::Fifo | T::Char | T::Block if self.owners => {
                let (file_type, device) = match kind {
                    T::Fifo => (FileType::Fifo, 0),
                    T::Char | T::Block => (
                        if kind == T::Char {
                            FileType::CharacterDevice
                        } else {
                            FileType::BlockDevice
                        },
                        rustix::fs::makedev(
                            entry.header().device_major()?.unwrap_or(0),
                            entry.header().device_minor()?.unwrap_or(0),
                        ),
                    ),
                    _ => unreachable!("matched above"),
                };
                self.create(dir, name, |dir, name| {
                    rustix::fs::mknodat(dir, name, file_type, mode, device)
                })?;
                set_owner_and_mode(dir, name, owner, Some(mode))?;
            }
            // Devices need root to make; a guest gets its own /dev anyway.
            T::Fifo | T::Char | T::Block => {}
            // Archive-wide metadata, not files.
            T::XGlobalHeader => {}
            other => {
                return Err(io::Error::other(format!(
                    "{other:?} entries are not supported"
                )));
            }
        }
        Ok(())
    }

    /// Make `name` in `dir` by `make`, replacing what is there.
    fn create(
        &mut self,
        dir: BorrowedFd<'_>,
        name: &std::ffi::OsStr,
        make: impl Fn(BorrowedFd<'_>, &std::ffi::OsStr) -> rustix::io::Result<()>,
    ) -> io::Result<()> {
        match make(dir, name) {
            Err(Errno::EXIST) => {
                self.replace(dir, name)?;
                Ok(make(dir, name)?)
            }
            other => Ok(other?),
        }
    }

    /// Remove what is at `name` for an entry that replaces it.
    fn replace(&mut self, dir: BorrowedFd<'_>, name: &std::ffi::OsStr) -> io::Result<()> {
        remove(dir, name)?;
        self.replaced = true;
        Ok(())
    }

    /// An opaque directory: what the lower layers put in `path` goes.
    fn make_opaque(&mut self, path: &Path) -> io::Result<()> {
        let dir = match self.resolve(path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            other => other?,
        };
        let listing = rustix::fs::openat(
            &dir,
            ".",
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        for name in children(&listing)? {
            if !self.made.contains(&path.join(&name)) {
                remove(dir.as_fd(), &name)?;
            }
        }
        self.parent = None;
        Ok(())
    }

    /// Keep `fd` as the open `path` for the entries that follow, unless an
    /// entry removed something (which may have been on the way to it).
    fn keep_parent(&mut self, path: &Path, fd: OwnedFd) {
        self.parent = Some((path.to_path_buf(), fd));
    }

    /// The directory `path` (relative to the root), made if missing; the
    /// one kept from the last entry if it is the same.
    fn parent_dir(&mut self, path: &Path) -> io::Result<OwnedFd> {
        match self.parent.take() {
            Some((kept, fd)) if kept == path => Ok(fd),
            _ => match self.resolve(path) {
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    self.make_dirs(path, 0)?;
                    self.resolve(path)
                }
                other => other,
            },
        }
    }

    /// Open the directory `path` as if the root were `/`.
    fn resolve(&self, path: &Path) -> io::Result<OwnedFd> {
        let path = if path.as_os_str().is_empty() {
            Path::new(".")
        } else {
            path
        };
        Ok(rustix::fs::openat2(
            &self.root,
            path,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
        )?)
    }

    /// Make the directories of `path` that are missing (0755, owned by the
    /// builder), as a tar that lists a file before its directory expects;
    /// through a symlink to a missing directory too, as `mkdir -p` in a
    /// chroot would.
    fn make_dirs(&self, path: &Path, depth: u8) -> io::Result<()> {
        let mut done = PathBuf::new();
        for part in path.components() {
            let dir = self.resolve(&done)?;
            let part = part.as_os_str();
            match rustix::fs::mkdirat(&dir, part, Mode::from_raw_mode(0o755)) {
                Err(Errno::EXIST) => {}
                other => other?,
            }
            let next = done.join(part);
            if let Err(e) = self.resolve(&next) {
                let target = match rustix::fs::readlinkat(&dir, part, Vec::new()) {
                    Ok(target) if depth < 40 => {
                        PathBuf::from(std::ffi::OsStr::from_bytes(target.as_bytes()))
                    }
                    _ => return Err(e),
                };
                self.make_dirs(&within(&done.join(target)), depth + 1)?;
            }
            done = next;
        }
        Ok(())
    }
}

/// Set the owner (when building as root) and then the mode (chown clears
/// set-id bits) of `name` in `dir`; a symlink gets only an owner.
fn set_owner_and_mode(
    dir: BorrowedFd<'_>,
    name: &std::ffi::OsStr,
    owner: Option<(rustix::fs::Uid, rustix::fs::Gid)>,
    mode: Option<Mode>,
) -> io::Result<()> {
    if let Some((uid, gid)) = owner {
        rustix::fs::chownat(dir, name, Some(uid), Some(gid), AtFlags::SYMLINK_NOFOLLOW)?;
    }
    if let Some(mode) = mode {
        rustix::fs::chmodat(dir, name, mode, AtFlags::empty())?;
    }
    Ok(())
}

/// The names in the directory open for reading as `listing`, without `.`
/// and `..`; read whole before anything in it changes.
fn children(listing: &OwnedFd) -> io::Result<Vec<std::ffi::OsString>> {
    let mut names = Vec::new();
    for child in rustix::fs::Dir::read_from(listing)? {
        let name = child?.file_name().to_bytes().to_vec();
        if name != b"." && name != b".." {
            names.push(std::os::unix::ffi::OsStringExt::from_vec(name));
        }
    }
    Ok(names)
}

/// Remove `name` in `dir` and all beneath it; whether there was one.
fn remove(dir: BorrowedFd<'_>, name: impl AsRef<std::ffi::OsStr>) -> io::Result<bool> {
    let name = name.as_ref();
    match rustix::fs::unlinkat(dir, name, AtFlags::empty()) {
        Ok(()) => return Ok(true),
        Err(Errno::NOENT) => return Ok(false),
        Err(Errno::ISDIR) | Err(Errno::PERM) => {}
        Err(e) => return Err(e.into()),
    }
    let inner = rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    for child in children(&inner)? {
        remove(inner.as_fd(), child)?;
    }
    rustix::fs::unlinkat(dir, name, AtFlags::REMOVEDIR)?;
    Ok(true)
}

/// `path` with `..` taken lexically and never above the root, as the
/// kernel takes it under `RESOLVE_IN_ROOT`.
fn within(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::Normal(p) => out.push(p),
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
        }
    }
    out
}

/// An entry's path as a relative path inside the root; `None` if it climbs
/// out (`..`).
fn inside(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for part in path.components() {
        match part {
            Component::Normal(p) => out.push(p),
            Component::CurDir | Component::RootDir => {}
            Component::ParentDir | Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    /// One layer's entries, as a tar.
    struct Layer(tar::Builder<Vec<u8>>);

    impl Default for Layer {
        fn default() -> Self {
            Layer(tar::Builder::new(Vec::new()))
        }
    }

    impl Layer {
        fn header(kind: tar::EntryType, mode: u32) -> tar::Header {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(kind);
            h.set_mode(mode);
            h.set_uid(1000);
            h.set_gid(1000);
            h.set_size(0);
            h
        }
        fn file(mut self, path: &str, text: &str) -> Self {
            let mut h = Self::header(tar::EntryType::Regular, 0o640);
            h.set_size(text.len() as u64);
            self.0.append_data(&mut h, path, text.as_bytes()).unwrap();
            self
        }
        fn dir(mut self, path: &str) -> Self {
            let mut h = Self::header(tar::EntryType::Directory, 0o750);
            self.0.append_data(&mut h, path, io::empty()).unwrap();
            self
        }
        fn link(mut self, kind: tar::EntryType, path: &str, target: &str) -> Self {
            let mut h = Self::header(kind, 0o777);
            self.0.append_link(&mut h, path, target).unwrap();
            self
        }
        /// An entry whose name is written as is, `..` and all.
        fn raw(mut self, name: &str, text: &str) -> Self {
            let mut h = Self::header(tar::EntryType::Regular, 0o644);
            h.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
            h.set_size(text.len() as u64);
            h.set_cksum();
            self.0.append(&h, text.as_bytes()).unwrap();
            self
        }
        fn gzip(self) -> Vec<u8> {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            gz.write_all(&self.0.into_inner().unwrap()).unwrap();
            gz.finish().unwrap()
        }
    }

    fn sha256(bytes: &[u8]) -> String {
        hex_of(&sha2::Sha256::digest(bytes))
    }

    /// A layout holding one image of `layers` (already compressed or not),
    /// named `image`.
    fn layout(dir: &Path, layers: &[Vec<u8>]) -> PathBuf {
        let layout = dir.join("layout");
        let blobs = layout.join("blobs/sha256");
        std::fs::create_dir_all(&blobs).unwrap();
        let put = |bytes: &[u8]| {
            let hex = sha256(bytes);
            std::fs::write(blobs.join(&hex), bytes).unwrap();
            (format!("sha256:{hex}"), bytes.len())
        };
        let (config, config_size) = put(b"{}");
        let layers: Vec<_> = layers
            .iter()
            .map(|l| {
                let (digest, size) = put(l);
                serde_json::json!({ "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                                     "digest": digest, "size": size })
            })
            .collect();
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": { "mediaType": "application/vnd.oci.image.config.v1+json",
                        "digest": config, "size": config_size },
            "layers": layers,
        });
        let (digest, size) = put(manifest.to_string().as_bytes());
        let index = serde_json::json!({
            "schemaVersion": 2,
            "manifests": [{ "mediaType": "application/vnd.oci.image.manifest.v1+json",
                            "digest": digest, "size": size,
                            "annotations": { REF_NAME: "image" } }],
        });
        std::fs::write(layout.join("index.json"), index.to_string()).unwrap();
        std::fs::write(
            layout.join("oci-layout"),
            r#"{"imageLayoutVersion":"1.0.0"}"#,
        )
        .unwrap();
        layout
    }

    fn unpacked(layers: &[Vec<u8>]) -> (tempfile::TempDir, Result<(), String>) {
        let dir = tempfile::tempdir().unwrap();
        let layout = layout(dir.path(), layers);
        let root = dir.path().join("root");
        std::fs::create_dir(&root).unwrap();
        let result = unpack(&layout, "image", &root);
        (dir, result)
    }

    fn read(dir: &tempfile::TempDir, path: &str) -> Option<String> {
        std::fs::read_to_string(dir.path().join("root").join(path)).ok()
    }

    #[test]
    fn layers_apply_in_order_with_whiteouts_and_opaque_directories() {
        let lower = Layer::default()
            .dir("etc/")
            .file("etc/os-release", "lower\n")
            .file("etc/gone", "x")
            .dir("var/cache/")
            .file("var/cache/a", "a")
            .file("var/cache/b", "b")
            .file("bin/tool", "#!tool\n")
            .gzip();
        let upper = Layer::default()
            .file("etc/os-release", "upper\n")
            .file("etc/.wh.gone", "")
            .file("var/cache/new", "new")
            .file("var/cache/.wh..wh..opq", "")
            .link(tar::EntryType::Link, "bin/tool-again", "bin/tool")
            .link(tar::EntryType::Symlink, "bin/sh", "tool")
            .gzip();
        let (dir, result) = unpacked(&[lower, upper]);
        result.unwrap();
        assert_eq!(read(&dir, "etc/os-release").as_deref(), Some("upper\n"));
        assert_eq!(read(&dir, "etc/gone"), None);
        assert_eq!(read(&dir, "var/cache/a"), None);
        assert_eq!(read(&dir, "var/cache/new").as_deref(), Some("new"));
        let root = dir.path().join("root");
        let tool = std::fs::metadata(root.join("bin/tool")).unwrap();
        let again = std::fs::metadata(root.join("bin/tool-again")).unwrap();
        assert_eq!(tool.ino(), again.ino(), "a hard link, not a copy");
        assert_eq!(
            std::fs::read_link(root.join("bin/sh")).unwrap(),
            Path::new("tool")
        );
        assert_eq!(tool.permissions().mode() & 0o7777, 0o640);
        let etc = std::fs::metadata(root.join("etc")).unwrap();
        assert_eq!(etc.permissions().mode() & 0o7777, 0o750);
        if rustix::process::geteuid().is_root() {
            assert_eq!((tool.uid(), tool.gid()), (1000, 1000));
        }
    }

    #[test]
    fn no_entry_lands_outside_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let outside = dir.path().join("outside");
        std::fs::create_dir(&outside).unwrap();
        // A lower layer plants a symlink to a host directory; the upper one
        // writes through it. The write stays in the root.
        let lower = Layer::default()
            .link(tar::EntryType::Symlink, "etc", outside.to_str().unwrap())
            .link(tar::EntryType::Symlink, "up", "../../..")
            .gzip();
        let upper = Layer::default()
            .file("etc/planted", "through the symlink")
            .file("up/climbed", "through the relative symlink")
            .gzip();
        let layout = layout(dir.path(), &[lower, upper]);
        let root = dir.path().join("root");
        std::fs::create_dir(&root).unwrap();
        unpack(&layout, "image", &root).unwrap();
        assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
        assert!(!dir.path().join("climbed").exists());
        let inner = root
            .join(outside.strip_prefix("/").unwrap())
            .join("planted");
        assert_eq!(
            std::fs::read_to_string(inner).unwrap(),
            "through the symlink"
        );
        assert!(root.join("climbed").exists());

        let (_dir, result) = unpacked(&[Layer::default().raw("../escaped", "x").gzip()]);
        assert!(result.unwrap_err().contains("leaves the root"));
    }

    #[test]
    fn a_tampered_blob_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let layer = Layer::default().file("etc/os-release", "real\n").gzip();
        let layout = layout(dir.path(), std::slice::from_ref(&layer));
        let blob = layout.join("blobs/sha256").join(sha256(&layer));
        let mut tampered = Layer::default().file("etc/os-release", "fake\n").gzip();
        tampered.resize(layer.len(), 0);
        std::fs::write(&blob, &tampered).unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir(&root).unwrap();
        let error = unpack(&layout, "image", &root).unwrap_err();
        assert!(error.contains("does not match its digest"), "{error}");
    }

    #[test]
    fn whiteouts_in_directories_no_layer_made_make_nothing() {
        let layer = Layer::default()
            .file("nothere/.wh.x", "")
            .file("gone/.wh..wh..opq", "")
            .gzip();
        let (dir, result) = unpacked(&[layer]);
        result.unwrap();
        assert_eq!(
            std::fs::read_dir(dir.path().join("root")).unwrap().count(),
            0
        );
    }

    #[test]
    fn uncompressed_and_zstd_layers_are_read() {
        let plain = Layer::default().file("a", "plain").0.into_inner().unwrap();
        let tar = Layer::default().file("b", "zstd").0.into_inner().unwrap();
        let zstd = zstd::encode_all(&tar[..], 1).unwrap();
        let (dir, result) = unpacked(&[plain, zstd]);
        result.unwrap();
        assert_eq!(read(&dir, "a").as_deref(), Some("plain"));
        assert_eq!(read(&dir, "b").as_deref(), Some("zstd"));
    }
}
