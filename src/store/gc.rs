//! Garbage collection and verification of a store.
//!
//! **Roots.** Every entry of `<store>/.roots/` is a gc root:
//! - a symlink, followed to the end: if it ends in a store path, that path is
//!   alive. `bottle build -o result` makes `result` point at the bottle and
//!   registers `.roots/result-<key>` → the absolute path of `result`, so
//!   deleting `result` lets the bottle go. The realizer registers each
//!   running bottle as `.roots/run-<id>` → its store path for the run's life.
//! - a regular file: one store path or store name per line, all alive.
//!
//! A symlink root whose chain no longer ends anywhere is stale and removed.
//! Everything a live path depends on (its record's `deps`) is alive too.
//! gc holds the store lock exclusively, so no build is half-done meanwhile:
//! what is left in `.tmp/` belongs to killed builds and is removed.
//!
//! **Verify** re-hashes each path: its record must hash to the path's name,
//! and the output must still have the content hash recorded when it was built.

use super::derivation::{derivation_hash, Kind};
use super::output::{content_hash_on_disk, disk_usage, remove_all};
use super::{io_err, split_store_name, Hash, Store, StoreError};
use rayon::prelude::*;
use std::collections::{BTreeSet, VecDeque};
use std::fs;
use std::path::Path;

/// What gc did.
#[derive(Debug, Default)]
pub struct GcReport {
    /// Store names removed (outputs and their records).
    pub removed: Vec<String>,
    /// Store names kept because a root reaches them.
    pub alive: usize,
    pub freed_bytes: u64,
    /// Root entries removed because nothing is at the end of them.
    pub stale_roots: Vec<String>,
    /// Leftovers of killed builds removed from `.tmp/`.
    pub partial: usize,
}

/// One thing wrong with a store path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// The output differs from what was built.
    TamperedOutput { store_name: String },
    /// The record no longer hashes to the path's name.
    TamperedRecord { store_name: String },
    /// An output without a record, or a record that cannot be read.
    MissingRecord { store_name: String },
    /// A build that was interrupted: its temporary files are still in `.tmp/`.
    Partial { entry: String },
    /// Something in the store that bottle did not put there.
    Foreign { entry: String },
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Problem::TamperedOutput { store_name } => {
                write!(
                    f,
                    "tampered: {store_name}: its content changed after it was built"
                )
            }
            Problem::TamperedRecord { store_name } => {
                write!(
                    f,
                    "tampered: {store_name}: its derivation record does not hash to its name"
                )
            }
            Problem::MissingRecord { store_name } => {
                write!(f, "unrecorded: {store_name}: no readable derivation record")
            }
            Problem::Partial { entry } => {
                write!(f, "partial: .tmp/{entry}: left by an interrupted build")
            }
            Problem::Foreign { entry } => write!(f, "foreign: {entry}: not a store path"),
        }
    }
}

#[derive(Debug, Default)]
pub struct VerifyReport {
    /// Store paths checked.
    pub checked: usize,
    pub problems: Vec<Problem>,
}

impl Store {
    /// Store names of every output currently in the store.
    fn outputs(&self) -> Result<Vec<String>, StoreError> {
        let mut names = Vec::new();
        for entry in fs::read_dir(self.root()).map_err(io_err(self.root()))? {
            let entry = entry.map_err(io_err(self.root()))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if !name.starts_with('.') && !name.ends_with(".drv") {
                names.push(name);
            }
        }
        names.sort();
        Ok(names)
    }

    /// Store names the roots reach directly; stale symlink roots are removed
    /// (only under the exclusive lock, from `gc`).
    fn root_names(
        &self,
        remove_stale: bool,
        stale: &mut Vec<String>,
    ) -> Result<BTreeSet<String>, StoreError> {
        let mut alive = BTreeSet::new();
        let dir = self.roots_dir();
        for entry in fs::read_dir(&dir).map_err(io_err(&dir))? {
            let entry = entry.map_err(io_err(&dir))?;
            let path = entry.path();
            let meta = fs::symlink_metadata(&path).map_err(io_err(&path))?;
            if meta.file_type().is_symlink() {
                match self.store_name_of(&path) {
                    Ok(name) => {
                        alive.insert(name);
                    }
                    Err(_) if fs::metadata(&path).is_err() => {
                        stale.push(entry.file_name().to_string_lossy().into_owned());
                        if remove_stale {
                            let _ = fs::remove_file(&path);
                        }
                    }
                    // A link to something outside the store pins nothing.
                    Err(_) => {}
                }
            } else if meta.is_file() {
                let text = fs::read_to_string(&path).map_err(io_err(&path))?;
                for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
                    let name = Path::new(line)
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned());
                    if let Some(name) = name.filter(|n| split_store_name(n).is_some()) {
                        alive.insert(name);
                    }
                }
            }
        }
        Ok(alive)
    }

    /// Remove every store path no root reaches, and leftovers of killed builds.
    pub fn gc(&self) -> Result<GcReport, StoreError> {
        let _lock = self.lock(true)?;
        let mut report = GcReport::default();
        let roots = self.root_names(true, &mut report.stale_roots)?;

        // Everything the roots' records say they depend on is alive too.
        let mut alive: BTreeSet<String> = BTreeSet::new();
        let mut queue: VecDeque<String> = roots.into_iter().collect();
        while let Some(name) = queue.pop_front() {
            if !alive.insert(name.clone()) {
                continue;
            }
            if let Ok(record) = self.read_record(&name) {
                for dep in record["deps"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|d| d.as_str())
                {
                    queue.push_back(dep.to_string());
                }
            }
        }

        let mut entries = Vec::new();
        for entry in fs::read_dir(self.root()).map_err(io_err(self.root()))? {
            let entry = entry.map_err(io_err(self.root()))?;
            entries.push(entry.file_name().to_string_lossy().into_owned());
        }
        for entry in entries {
            if entry.starts_with('.') {
                continue;
            }
            let store_name = entry.strip_suffix(".drv").unwrap_or(&entry);
            if alive.contains(store_name) {
                continue;
            }
            let path = self.root().join(&entry);
            report.freed_bytes += disk_usage(&path);
            remove_all(&path).map_err(io_err(&path))?;
            if !entry.ends_with(".drv") {
                report.removed.push(entry);
            }
        }
        report.alive = self.outputs()?.len();
        report.removed.sort();

        // No builder holds the lock now: anything under .tmp/ and .locks/ is debris.
        for sub in [".tmp", ".locks"] {
            let dir = self.root().join(sub);
            for entry in fs::read_dir(&dir).map_err(io_err(&dir))?.flatten() {
                if sub == ".tmp" {
                    report.partial += 1;
                }
                remove_all(&entry.path()).map_err(io_err(&entry.path()))?;
            }
        }
        Ok(report)
    }

    /// Re-hash every store path and report the ones that are not what they claim.
    pub fn verify(&self) -> Result<VerifyReport, StoreError> {
        let _lock = self.lock(false)?;
        let outputs = self.outputs()?;
        let mut problems: Vec<Problem> = outputs
            .par_iter()
            .filter_map(|name| self.verify_one(name))
            .collect();
        // A shared lock keeps gc out but lets builders in; their files in
        // .tmp/ are current work, not leftovers, unless no lock is held on them.
        let tmp = self.root().join(".tmp");
        for entry in fs::read_dir(&tmp).map_err(io_err(&tmp))?.flatten() {
            let entry = entry.file_name().to_string_lossy().into_owned();
            if !self.being_built(&entry) {
                problems.push(Problem::Partial { entry });
            }
        }
        problems.sort_by_key(|p| p.to_string());
        Ok(VerifyReport {
            checked: outputs.len(),
            problems,
        })
    }

    /// Whether a live builder holds the lock of the path a `.tmp/` entry is for.
    fn being_built(&self, tmp_entry: &str) -> bool {
        // `.tmp/<store name>.<pid>.<n>`: strip the two numeric suffixes.
        let mut parts = tmp_entry.rsplitn(3, '.');
        let (Some(_), Some(_), Some(store_name)) = (parts.next(), parts.next(), parts.next())
        else {
            return false;
        };
        let store_name = store_name.strip_suffix(".drv").unwrap_or(store_name);
        let lock = self.lock_file(store_name);
        let Ok(file) = fs::File::open(lock) else {
            return false;
        };
        match nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock) {
            Ok(_unlocked_on_drop) => false,
            Err(_) => true,
        }
    }

    fn verify_one(&self, store_name: &str) -> Option<Problem> {
        let Some((hash, _)) = split_store_name(store_name) else {
            return Some(Problem::Foreign {
                entry: store_name.to_string(),
            });
        };
        let missing = || {
            Some(Problem::MissingRecord {
                store_name: store_name.to_string(),
            })
        };
        let Ok(record) = self.read_record(store_name) else {
            return missing();
        };
        let (Some(kind), Some(name)) = (
            record["kind"].as_str().and_then(Kind::parse),
            record["name"].as_str(),
        ) else {
            return missing();
        };
        let deps: Option<Vec<Hash>> = record["deps"]
            .as_array()
            .map(|deps| {
                deps.iter()
                    .map(|d| d.as_str().and_then(split_store_name).map(|(h, _)| h))
                    .collect()
            })
            .unwrap_or(Some(Vec::new()));
        let recomputed =
            deps.and_then(|deps| derivation_hash(kind, name, &record["inputs"], &deps).ok());
        if recomputed != Some(hash) || format!("{hash}-{name}") != store_name {
            return Some(Problem::TamperedRecord {
                store_name: store_name.to_string(),
            });
        }
        let recorded = record["output"]["blake3"].as_str().and_then(Hash::parse);
        let actual = content_hash_on_disk(&self.root().join(store_name)).ok();
        if recorded.is_none() || recorded != actual {
            return Some(Problem::TamperedOutput {
                store_name: store_name.to_string(),
            });
        }
        None
    }
}
