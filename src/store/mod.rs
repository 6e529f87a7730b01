//! The content-addressed store: where derivation outputs live, by hash.
//!
//! Layout of a store directory (default `$XDG_DATA_HOME/bottle/store`):
//!
//! ```text
//! <hash>-<name>        an output (file or directory), read-only once there
//! <hash>-<name>.drv    its derivation record (JSON, with the output's content hash)
//! .lock                store-wide lock: builders hold it shared, gc exclusive
//! .locks/              build locks, one per stripe of paths (see `lock_file`)
//! .tmp/                outputs being written; renamed into place when whole
//! .roots/              gc roots (see `gc.rs`)
//! ```
//!
//! An output appears by `rename(2)` from `.tmp/`, so a path exists whole or
//! not at all; the per-path lock makes concurrent builders of one derivation
//! produce it once. This module is the layout and the locks; `build.rs`
//! realizes a graph, `gc.rs` collects garbage and verifies.

mod build;
pub mod derivation;
mod gc;
pub mod hash;
pub mod output;

pub use build::{building_in, scratch_dir, staging_path, BuildReport, RenderError, Status};
pub use derivation::{Derivation, Kind, GUEST_STORE};
pub use gc::{GcReport, Problem, VerifyReport};
pub use hash::Hash;
pub use output::Output;

use nix::fcntl::{Flock, FlockArg};
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Errors from store operations; all are about the host file system.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum StoreError {
    #[error("cannot use the store at {path}: {source}")]
    #[diagnostic(help(
        "check that the directory is writable, or choose another with --store or BOTTLE_STORE"
    ))]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot render {name} ({kind}): {message}")]
    #[diagnostic(help("this is a bug in bottle's lowering; please report it with the recipe"))]
    Render {
        name: String,
        kind: Kind,
        message: String,
    },
    #[error("cannot build {name} ({kind}): {message}")]
    #[diagnostic(help("{help}"))]
    Build {
        name: String,
        kind: Kind,
        message: String,
        help: String,
    },
    #[error("{link} exists and is not a symlink; refusing to replace it with a result link")]
    #[diagnostic(help("remove it or pass another path to -o"))]
    LinkOccupied { link: PathBuf },
    #[error("{0} is not a store path")]
    #[diagnostic(help("store paths look like <store>/<32-character hash>-<name>"))]
    NotAStorePath(PathBuf),
}

pub(crate) fn io_err(path: &Path) -> impl FnOnce(io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// An open store directory.
#[derive(Clone, Debug)]
pub struct Store {
    root: PathBuf,
}

/// Held while building (shared) or collecting garbage (exclusive).
pub struct StoreLock {
    _lock: Flock<File>,
}

impl Store {
    /// The default store: `$XDG_DATA_HOME/bottle/store`, or
    /// `~/.local/share/bottle/store` when `XDG_DATA_HOME` is unset.
    pub fn default_root() -> PathBuf {
        let data = std::env::var_os("XDG_DATA_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
            .unwrap_or_else(|| PathBuf::from("/var/lib"));
        data.join("bottle/store")
    }

    /// Open (creating if needed) the store at `root`.
    pub fn open(root: impl Into<PathBuf>) -> Result<Store, StoreError> {
        let root: PathBuf = root.into();
        for dir in [
            root.clone(),
            root.join(".locks"),
            root.join(".tmp"),
            root.join(".roots"),
        ] {
            fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        }
        // Canonical, so roots that resolve through symlinks compare equal.
        let root = fs::canonicalize(&root).map_err(io_err(&root))?;
        Ok(Store { root })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where a derivation's output lives on this host.
    pub fn path_of(&self, drv: &Derivation) -> PathBuf {
        self.root.join(drv.store_name())
    }

    /// The directory of gc roots: `<store>/.roots`.
    pub fn roots_dir(&self) -> PathBuf {
        self.root.join(".roots")
    }

    fn record_path(&self, store_name: &str) -> PathBuf {
        self.root.join(format!("{store_name}.drv"))
    }

    /// Take the store-wide lock. Builders and anything registering a root
    /// hold it shared; gc holds it exclusive, so it never sees half a build.
    pub fn lock(&self, exclusive: bool) -> Result<StoreLock, StoreError> {
        let path = self.root.join(".lock");
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io_err(&path))?;
        let arg = if exclusive {
            FlockArg::LockExclusive
        } else {
            FlockArg::LockShared
        };
        let lock = Flock::lock(file, arg).map_err(|(_, errno)| StoreError::Io {
            path,
            source: errno.into(),
        })?;
        Ok(StoreLock { _lock: lock })
    }

    /// The lock file guarding builds of `store_name`. Locks are striped by
    /// the first two hash characters (at most 1,024 files, made once and
    /// reused), because creating a file per path per build costs more than
    /// the build itself on a busy disk; two paths sharing a stripe just
    /// build one after the other.
    fn lock_file(&self, store_name: &str) -> PathBuf {
        let stripe = store_name.get(..2).unwrap_or("00");
        self.root.join(".locks").join(format!("{stripe}.lock"))
    }

    /// Lock one store path for building it.
    fn lock_path(&self, store_name: &str) -> Result<Flock<File>, StoreError> {
        let path = self.lock_file(store_name);
        let file = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io_err(&path))?;
        Flock::lock(file, FlockArg::LockExclusive).map_err(|(_, errno)| StoreError::Io {
            path,
            source: errno.into(),
        })
    }

    /// A fresh name under `.tmp/` for writing `store_name` before the rename.
    fn temp_path(&self, store_name: &str) -> PathBuf {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        self.root
            .join(".tmp")
            .join(format!("{store_name}.{}.{n}", std::process::id()))
    }

    /// Resolve a path the user gave (a store path, or a link to one, such as
    /// a `-o result` link) to its store name `<hash>-<name>`.
    pub fn store_name_of(&self, path: &Path) -> Result<String, StoreError> {
        let full = fs::canonicalize(path).map_err(io_err(path))?;
        let rel = full
            .strip_prefix(&self.root)
            .map_err(|_| StoreError::NotAStorePath(path.to_path_buf()))?;
        let first = rel
            .components()
            .next()
            .ok_or_else(|| StoreError::NotAStorePath(path.to_path_buf()))?;
        let name = first.as_os_str().to_string_lossy().into_owned();
        let name = name
            .strip_suffix(".drv")
            .map(str::to_string)
            .unwrap_or(name);
        if split_store_name(&name).is_none() {
            return Err(StoreError::NotAStorePath(path.to_path_buf()));
        }
        Ok(name)
    }

    /// The derivation record kept beside a store path (what `show-derivation` prints).
    pub fn read_record(&self, store_name: &str) -> Result<serde_json::Value, StoreError> {
        let path = self.record_path(store_name);
        let text = fs::read_to_string(&path).map_err(io_err(&path))?;
        serde_json::from_str(&text).map_err(|e| StoreError::Io {
            path,
            source: io::Error::new(io::ErrorKind::InvalidData, e),
        })
    }

    /// Register a gc root named `name` pointing at `target` (a store path, or
    /// a link that leads to one). The realizer registers each running
    /// bottle's path this way and removes it with [`Store::remove_root`].
    pub fn add_root(&self, name: &str, target: &Path) -> Result<(), StoreError> {
        let _lock = self.lock(false)?;
        let root = self.roots_dir().join(name);
        let temp = self.temp_path(&format!("root-{name}"));
        std::os::unix::fs::symlink(target, &temp).map_err(io_err(&temp))?;
        fs::rename(&temp, &root).map_err(io_err(&root))
    }

    pub fn remove_root(&self, name: &str) -> Result<(), StoreError> {
        let root = self.roots_dir().join(name);
        match fs::remove_file(&root) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_err(&root)(e)),
            _ => Ok(()),
        }
    }

    /// Make `link` a symlink to `target` (a store path) and register it as an
    /// indirect gc root: the path stays alive while the link points at it.
    pub fn link_result(&self, link: &Path, target: &Path) -> Result<(), StoreError> {
        match fs::symlink_metadata(link) {
            Ok(meta) if !meta.file_type().is_symlink() => {
                return Err(StoreError::LinkOccupied {
                    link: link.to_path_buf(),
                })
            }
            _ => {}
        }
        let parent = link
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let parent = fs::canonicalize(parent).map_err(io_err(parent))?;
        let file_name = link.file_name().ok_or_else(|| StoreError::LinkOccupied {
            link: link.to_path_buf(),
        })?;
        let abs_link = parent.join(file_name);
        // Replace atomically: a reader sees the old target or the new one.
        let temp = parent.join(format!(
            ".{}.bottle-tmp-{}",
            file_name.to_string_lossy(),
            std::process::id()
        ));
        let _ = fs::remove_file(&temp);
        std::os::unix::fs::symlink(target, &temp).map_err(io_err(&temp))?;
        fs::rename(&temp, &abs_link).map_err(io_err(&abs_link))?;
        let key = blake3::hash(abs_link.as_os_str().as_encoded_bytes()).to_hex();
        self.add_root(&format!("result-{}", &key[..16]), &abs_link)
    }
}

/// Split `<hash>-<name>` into its parts, if it is a store name.
pub fn split_store_name(store_name: &str) -> Option<(Hash, &str)> {
    let (hash, name) = store_name.split_at_checked(hash::HASH_CHARS)?;
    let name = name.strip_prefix('-')?;
    Some((Hash::parse(hash)?, name))
}
