//! Realizing a derivation graph in the store: each derivation whose path is
//! missing is rendered, written under `.tmp/` and renamed into place; a path
//! that exists is a cache hit and is not rendered again. Derivations of one
//! depth (all of whose dependencies are done) build in parallel with rayon.

use super::derivation::{closure_of, Derivation, Kind};
use super::hash::sorted_json;
use super::output::{remove_all, Output};
use super::{io_err, Store, StoreError};
use rayon::prelude::*;
use std::collections::HashMap;
use std::fs;
use std::sync::Arc;

/// A renderer failed: the derivation's inputs did not have the shape its
/// kind expects. Only a bug in a lowering gets here.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct RenderError(pub String);

/// What happened to one derivation in a build.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Rendered and written by this build.
    Built,
    /// Already in the store (or written by a concurrent builder meanwhile).
    Cached,
    /// Missing; a dry run would build it.
    Missing,
}

/// The outcome of building (or planning) a graph, dependencies first.
#[derive(Debug, Default)]
pub struct BuildReport {
    pub derivations: Vec<(Arc<Derivation>, Status)>,
}

impl BuildReport {
    pub fn with(&self, status: Status) -> impl Iterator<Item = &Arc<Derivation>> {
        self.derivations
            .iter()
            .filter(move |(_, s)| *s == status)
            .map(|(d, _)| d)
    }
}

thread_local! {
    static BUILDING_IN: std::cell::RefCell<Option<std::path::PathBuf>> = const { std::cell::RefCell::new(None) };
}

/// Set while a renderer runs on this thread: the store it builds into.
struct BuildContext;

impl BuildContext {
    fn enter(store: &Store) -> BuildContext {
        BUILDING_IN.with(|b| *b.borrow_mut() = Some(store.root().to_path_buf()));
        BuildContext
    }
}

impl Drop for BuildContext {
    fn drop(&mut self) {
        BUILDING_IN.with(|b| *b.borrow_mut() = None);
    }
}

/// The store a renderer on this thread is building into, if any. Renderers
/// of large outputs (images, fetches) read their dependencies' outputs here
/// and stage their own under [`scratch_dir`], so [`Output::Staged`] is a
/// rename on the same file system.
pub fn building_in() -> Option<std::path::PathBuf> {
    BUILDING_IN.with(|b| b.borrow().clone())
}

/// A fresh, empty directory for a renderer's work, under the store's `.tmp/`
/// while building (the system's temporary directory otherwise). The caller
/// removes it (a `tempfile::TempDir`).
pub fn scratch_dir() -> std::io::Result<tempfile::TempDir> {
    let base = building_in()
        .map(|root| root.join(".tmp"))
        .unwrap_or_else(std::env::temp_dir);
    tempfile::Builder::new().prefix("build-").tempdir_in(base)
}

fn build_help(kind: Kind) -> String {
    match kind {
        Kind::Fetch => "a fixed-output fetch gives exactly the bytes its hash names: fix the URL, \
                        or put the hash that was got in the recipe if you trust the new content \
                        (a pin of bottle.lock: `bottle lock --update RECIPE`)"
            .into(),
        Kind::Source => "the recipe's directory changed or vanished since it was read; build again".into(),
        Kind::OciPull => "check the reference and its digest (`skopeo inspect docker://REF` shows the digest); a private registry needs `skopeo login` on the host".into(),
        Kind::Oci => "the OCI layout or archive must hold a linux/amd64 image whose blobs match their digests; skopeo reads an archive (scripts/setup installs it)".into(),
        Kind::Debian => "mmdebstrap builds the tree from the locked packages alone; if a package is missing, resolve the lock again (`bottle lock --update RECIPE`)".into(),
        _ => "see docs/store.md for what building a root needs (erofs-utils, root privileges)".into(),
    }
}

/// A path (not yet existing) beside [`scratch_dir`]'s directories where a
/// renderer puts what it returns as [`Output::Staged`].
pub fn staging_path(name: &str) -> std::path::PathBuf {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    building_in()
        .map(|root| root.join(".tmp"))
        .unwrap_or_else(std::env::temp_dir)
        .join(format!("staged-{}-{n}-{name}", std::process::id()))
}

/// Group a closure by depth: every derivation's dependencies sit in earlier groups.
fn levels(closure: Vec<Arc<Derivation>>) -> Vec<Vec<Arc<Derivation>>> {
    let mut depth: HashMap<super::Hash, usize> = HashMap::with_capacity(closure.len());
    let mut levels: Vec<Vec<Arc<Derivation>>> = Vec::new();
    for drv in closure {
        // `closure` lists dependencies first, so their depths are known.
        let d = drv
            .deps()
            .iter()
            .map(|dep| depth[&dep.hash()] + 1)
            .max()
            .unwrap_or(0);
        depth.insert(drv.hash(), d);
        if levels.len() <= d {
            levels.resize_with(d + 1, Vec::new);
        }
        levels[d].push(drv);
    }
    levels
}

impl Store {
    /// Which derivations of the graph are present and which would be built.
    pub fn plan(&self, roots: &[Arc<Derivation>]) -> BuildReport {
        let derivations = closure_of(roots)
            .into_iter()
            .map(|d| {
                let status = if self.path_of(&d).symlink_metadata().is_ok() {
                    Status::Cached
                } else {
                    Status::Missing
                };
                (d, status)
            })
            .collect();
        BuildReport { derivations }
    }

    /// Make every derivation of the graph present in the store.
    pub fn build<R>(&self, roots: &[Arc<Derivation>], render: &R) -> Result<BuildReport, StoreError>
    where
        R: Fn(&Derivation) -> Result<Output, RenderError> + Sync,
    {
        let closure = closure_of(roots);
        // Fast path: a no-op rebuild takes no locks and writes nothing.
        if closure
            .iter()
            .all(|d| self.path_of(d).symlink_metadata().is_ok())
        {
            return Ok(BuildReport {
                derivations: closure.into_iter().map(|d| (d, Status::Cached)).collect(),
            });
        }
        let _store_lock = self.lock(false)?;
        let mut report = BuildReport::default();
        for level in levels(closure) {
            let done: Vec<Result<(Arc<Derivation>, Status), StoreError>> = level
                .into_par_iter()
                .map(|drv| self.build_one(&drv, render).map(|status| (drv, status)))
                .collect();
            for result in done {
                report.derivations.push(result?);
            }
        }
        Ok(report)
    }

    fn build_one<R>(&self, drv: &Derivation, render: &R) -> Result<Status, StoreError>
    where
        R: Fn(&Derivation) -> Result<Output, RenderError>,
    {
        let store_name = drv.store_name();
        let path = self.root().join(&store_name);
        if path.symlink_metadata().is_ok() {
            return Ok(Status::Cached);
        }
        let _path_lock = self.lock_path(&store_name)?;
        // Another builder may have finished it while we waited for the lock.
        if path.symlink_metadata().is_ok() {
            return Ok(Status::Cached);
        }
        let output = {
            let _context = BuildContext::enter(self);
            render(drv)
        }
        .map_err(|e| match drv.kind() {
            // These kinds read the host, run tools or fetch: their failures
            // are the user's to fix, not a lowering bug.
            Kind::Source | Kind::Fetch | Kind::Debian | Kind::Rootfs | Kind::Oci => {
                StoreError::Build {
                    name: drv.name().to_string(),
                    kind: drv.kind(),
                    message: e.0,
                    help: build_help(drv.kind()),
                }
            }
            _ => StoreError::Render {
                name: drv.name().to_string(),
                kind: drv.kind(),
                message: e.0,
            },
        })?;

        // The record first, so a path that exists always has one. Written in
        // place: we hold the path's lock, and a record is trusted only once
        // its output exists, which happens after this write completed.
        let mut record = drv.to_record();
        record["output"] = serde_json::json!({ "blake3": output.content_hash().to_string() });
        let record = sorted_json(&record);
        let record_path = self.record_path(&store_name);
        let text =
            serde_json::to_string_pretty(&record).expect("a JSON value always serializes") + "\n";
        fs::write(&record_path, text).map_err(io_err(&record_path))?;

        let temp = self.temp_path(&store_name);
        if let Err(e) = output.write(&temp) {
            let _ = remove_all(&temp);
            if let Output::Staged(staged) = &output {
                let _ = remove_all(staged);
            }
            return Err(io_err(&temp)(e));
        }
        fs::rename(&temp, &path).map_err(io_err(&path))?;
        Ok(Status::Built)
    }
}
