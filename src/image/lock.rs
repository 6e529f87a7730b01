//! `bottle.lock`: the pins of a recipe's remote inputs named by tag or by
//! name, beside the recipe (one per directory, shared by its recipes).
//!
//! - an OCI reference by tag (`registry/name:tag`) → the digest of the
//!   manifest (or manifest list) the tag named when it was locked;
//! - a Debian image (`suite` + `packages`) → the closure of packages it
//!   installs, each with its exact version, pool file, size and SHA256;
//! - an npm package by name and version or dist-tag
//!   (`lib.fetchers.npm { name; version; }` without `integrity`) → the
//!   exact version and the registry's `dist.integrity`. This one is read
//!   during evaluation (the fetch's store path is a string of the recipe),
//!   through the lock session [`begin`] opens.
//!
//! Every build reads the lock; what it lacks is resolved (over the network)
//! and written on the first build, or by `bottle lock`; `bottle lock
//! --update` resolves everything again. With the lock, a build names only
//! fixed-output derivations (a pull by digest, a fetch by hash), so with
//! their outputs in the store or in `BOTTLE_CACHE` it needs no network.
//!
//! The format is JSON, one value per line, sections in a fixed order and
//! their entries sorted, so a change of pins is a readable diff:
//!
//! ```json
//! {
//!   "version": 1,
//!   "oci": { "127.0.0.1:5000/test/busybox:1": { "digest": "sha256:…" } },
//!   "debian": {
//!     "bookworm: ca-certificates git": {
//!       "suite": "bookworm",
//!       "packages": [ "ca-certificates", "git" ],
//!       "mirror": "http://deb.debian.org/debian",
//!       "closure": { "git": { "version": "1:2.39.5-0+deb12u2", … } }
//!     }
//!   }
//! }
//! ```

use super::debian::{self, Closure};
use crate::schema::{Bottle, Image};
use miette::Diagnostic;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The lock file's name, beside the recipe.
pub const FILE: &str = "bottle.lock";
const VERSION: u32 = 1;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lock {
    pub version: u32,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub oci: BTreeMap<String, OciPin>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub debian: BTreeMap<String, DebianPin>,
    /// `name@version-or-tag` → the exact version and its integrity.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub npm: BTreeMap<String, NpmPin>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NpmPin {
    pub version: String,
    /// The registry's `dist.integrity` (SRI) of the version's tarball.
    pub integrity: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OciPin {
    /// `sha256:…` of the manifest (or index) the tag named.
    pub digest: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DebianPin {
    pub suite: String,
    /// The packages the recipe names (sorted).
    pub packages: Vec<String>,
    /// The mirror the closure was resolved from (the build fetches from the
    /// recipe's, which must carry the same files).
    pub mirror: String,
    pub closure: Closure,
}

#[derive(Debug, thiserror::Error, Diagnostic)]
pub enum LockError {
    #[error("cannot read {path}: {reason}")]
    #[diagnostic(help(
        "bottle.lock is JSON written by `bottle lock`; fix it, or delete it and run `bottle lock RECIPE`"
    ))]
    Read { path: PathBuf, reason: String },
    #[error("cannot write {path}: {reason}")]
    #[diagnostic(help(
        "bottle writes the lock beside the recipe: that directory must be writable"
    ))]
    Write { path: PathBuf, reason: String },
    #[error("cannot look up the digest of `{reference}`: {reason}")]
    #[diagnostic(help(
        "check the reference and that its registry is reachable; once `bottle.lock` pins it, builds do not ask the registry"
    ))]
    Oci { reference: String, reason: String },
    #[error("cannot resolve the Debian packages {packages} of {suite}: {reason}")]
    #[diagnostic(help(
        "check the package names (`apt-cache show NAME`) and that the mirror is reachable; once `bottle.lock` pins them, builds do not read the archive's index"
    ))]
    Debian {
        suite: String,
        packages: String,
        reason: String,
    },
}

/// Where the lock of `recipe` is: beside it (in it, for a directory).
pub fn path_for(recipe: &Path) -> PathBuf {
    let recipe = std::path::absolute(recipe).unwrap_or_else(|_| recipe.to_path_buf());
    if recipe.is_dir() {
        return recipe.join(FILE);
    }
    recipe
        .parent()
        .map(|p| p.join(FILE))
        .unwrap_or_else(|| PathBuf::from(FILE))
}

impl Lock {
    /// The lock at `path`; an empty one if there is none.
    pub fn read(path: &Path) -> Result<Lock, LockError> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Lock {
                    version: VERSION,
                    ..Lock::default()
                })
            }
            Err(e) => {
                return Err(LockError::Read {
                    path: path.into(),
                    reason: e.to_string(),
                })
            }
        };
        let lock: Lock = serde_json::from_str(&text).map_err(|e| LockError::Read {
            path: path.into(),
            reason: e.to_string(),
        })?;
        if lock.version != VERSION {
            return Err(LockError::Read {
                path: path.into(),
                reason: format!(
                    "it is version {} and this bottle reads version {VERSION}",
                    lock.version
                ),
            });
        }
        let bad = |reason: String| LockError::Read {
            path: path.into(),
            reason,
        };
        for (reference, pin) in &lock.oci {
            if super::pull::pinned(&format!("{reference}@{}", pin.digest)).is_none() {
                return Err(bad(format!(
                    "`{}` (of `{reference}`) is not a sha256 digest",
                    pin.digest
                )));
            }
        }
        for (key, pin) in &lock.npm {
            super::fetch::Sri::parse(&pin.integrity)
                .map_err(|e| bad(format!("npm `{key}`: {e}")))?;
        }
        for pin in lock.debian.values() {
            for (name, deb) in &pin.closure {
                debian::deb_fetch(&pin.mirror, deb)
                    .map_err(|e| bad(format!("package `{name}`: {e}")))?;
            }
        }
        Ok(lock)
    }

    /// The text of the lock: one value per line, entries sorted.
    pub fn to_text(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).expect("plain data");
        text.push('\n');
        text
    }
}

/// The key of a Debian image in the lock: its suite and sorted packages.
fn debian_key(suite: &str, packages: &[String]) -> (String, Vec<String>) {
    let mut packages = packages.to_vec();
    packages.sort();
    packages.dedup();
    (format!("{suite}: {}", packages.join(" ")), packages)
}

/// What applying a lock did.
#[derive(Debug, Default)]
pub struct Applied {
    /// The lock file.
    pub path: PathBuf,
    /// One line per pin that was added or moved.
    pub changes: Vec<String>,
}

/// The lock being applied to one recipe's evaluation (npm pins are asked
/// for while evaluating; [`apply`] then takes them with the rest).
struct Session {
    path: PathBuf,
    old: Lock,
    lock: Lock,
    update: bool,
    fresh: std::collections::BTreeSet<String>,
    changes: Vec<String>,
}

fn session() -> &'static std::sync::Mutex<Option<Session>> {
    static SESSION: std::sync::OnceLock<std::sync::Mutex<Option<Session>>> =
        std::sync::OnceLock::new();
    SESSION.get_or_init(Default::default)
}

/// Open the lock of `recipe` for its evaluation: `lockNpm` reads (and with
/// `update`, resolves again) its npm pins; [`apply`] finishes the session.
pub fn begin(recipe: &Path, update: bool) -> Result<(), LockError> {
    let path = path_for(recipe);
    let old = Lock::read(&path)?;
    *session().lock().unwrap_or_else(|p| p.into_inner()) = Some(Session {
        path,
        lock: old.clone(),
        old,
        update,
        fresh: Default::default(),
        changes: Vec::new(),
    });
    Ok(())
}

/// The pin of npm package `name` at `version` (an exact version or a
/// dist-tag such as `latest`): from the open lock, else asked of the
/// registry (and added to the lock). Without an open lock (`bottle eval`),
/// asked of the registry every time.
pub fn npm(name: &str, version: &str) -> Result<NpmPin, String> {
    let key = format!("{name}@{version}");
    let mut guard = session().lock().unwrap_or_else(|p| p.into_inner());
    let Some(s) = guard.as_mut() else {
        drop(guard);
        return resolve_npm(name, version);
    };
    let known = s.lock.npm.get(&key).cloned();
    match known {
        Some(pin) if !s.update || s.fresh.contains(&key) => Ok(pin),
        known => {
            let pin = resolve_npm(name, version)?;
            match known {
                Some(old) if old != pin => s.changes.push(format!(
                    "npm {key}: {} {} → {} {}",
                    old.version, old.integrity, pin.version, pin.integrity
                )),
                Some(_) => {}
                None => s
                    .changes
                    .push(format!("npm {key}: {} {}", pin.version, pin.integrity)),
            }
            s.lock.npm.insert(key.clone(), pin.clone());
            s.fresh.insert(key);
            Ok(pin)
        }
    }
}

/// The npm registry (as `lib.fetchers.npm` fetches from it).
const NPM_REGISTRY: &str = "https://registry.npmjs.org";

/// Ask the registry for a version's metadata: its exact version and integrity.
fn resolve_npm(name: &str, version: &str) -> Result<NpmPin, String> {
    let valid = |s: &str, extra: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "-._~".contains(c) || extra.contains(c))
    };
    if !valid(name, "@/") || !valid(version, "+") {
        return Err(format!(
            "`{name}@{version}` is not an npm package name and version"
        ));
    }
    let url = format!("{NPM_REGISTRY}/{}/{version}", name.replace('/', "%2f"));
    let body = super::run_output(super::curl().args([
        "--connect-timeout",
        "20",
        "--max-time",
        "60",
        "--",
        &url,
    ]))
    .map_err(|e| format!("asking {url}: {}", e.0))?;
    let meta: serde_json::Value =
        serde_json::from_slice(&body).map_err(|e| format!("{url} did not answer JSON: {e}"))?;
    let exact = meta["version"].as_str();
    let integrity = meta["dist"]["integrity"].as_str();
    match (exact, integrity) {
        (Some(v), Some(i)) if super::fetch::Sri::parse(i).is_ok() => Ok(NpmPin {
            version: v.to_string(),
            integrity: i.to_string(),
        }),
        _ => Err(format!(
            "{url} names no version with a sha256/sha512 `dist.integrity`"
        )),
    }
}

/// Pin every bottle's tag-named image and Debian packages from the lock
/// beside `recipe`, resolving (over the network) what it lacks, or all of
/// it with `update`; the lock is written when it changed. Finishes the
/// session [`begin`] opened for the same recipe (its npm pins).
pub fn apply(bottles: &mut [Bottle], recipe: &Path, update: bool) -> Result<Applied, LockError> {
    let path = path_for(recipe);
    let opened = session()
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .take()
        .filter(|s| s.path == path);
    let (old, mut lock, mut changes) = match opened {
        Some(s) => (s.old, s.lock, s.changes),
        None => {
            let old = Lock::read(&path)?;
            (old.clone(), old, Vec::new())
        }
    };
    // With `update`, each entry is resolved once even if several bottles use it.
    let mut fresh = std::collections::BTreeSet::new();
    for bottle in bottles.iter_mut() {
        match &mut bottle.image {
            Image::Oci(reference) if super::pull::pinned(reference).is_none() => {
                let key = reference.clone();
                let known = lock.oci.get(&key).map(|p| p.digest.clone());
                let digest = match known {
                    Some(d) if !update || fresh.contains(&key) => d,
                    known => {
                        let digest =
                            super::pull::resolve(&key).map_err(|reason| LockError::Oci {
                                reference: key.clone(),
                                reason,
                            })?;
                        match known {
                            Some(old) if old != digest => {
                                changes.push(format!("{key}: {old} → {digest}"))
                            }
                            Some(_) => {}
                            None => changes.push(format!("{key}: {digest}")),
                        }
                        lock.oci.insert(
                            key.clone(),
                            OciPin {
                                digest: digest.clone(),
                            },
                        );
                        fresh.insert(key.clone());
                        digest
                    }
                };
                *reference = format!("{key}@{digest}");
            }
            Image::Debian {
                suite,
                packages,
                mirror,
                closure,
            } => {
                let (key, sorted) = debian_key(suite, packages);
                let have = lock.debian.get(&key).map(|p| p.closure.clone());
                *closure = match have {
                    Some(c) if !update || fresh.contains(&key) => c,
                    have => {
                        let resolved =
                            debian::resolve(suite, mirror, &sorted).map_err(|reason| {
                                LockError::Debian {
                                    suite: suite.clone(),
                                    packages: sorted.join(" "),
                                    reason,
                                }
                            })?;
                        match &have {
                            Some(old) if *old != resolved => {
                                let moved = resolved
                                    .iter()
                                    .filter(|(n, d)| old.get(*n) != Some(d))
                                    .count();
                                changes.push(format!(
                                    "debian {key}: {moved} of {} packages changed",
                                    resolved.len()
                                ))
                            }
                            Some(_) => {}
                            None => {
                                changes.push(format!("debian {key}: {} packages", resolved.len()))
                            }
                        }
                        lock.debian.insert(
                            key.clone(),
                            DebianPin {
                                suite: suite.clone(),
                                packages: sorted,
                                mirror: mirror.clone(),
                                closure: resolved.clone(),
                            },
                        );
                        fresh.insert(key);
                        resolved
                    }
                };
            }
            _ => {}
        }
    }
    if lock != old {
        let temp = path.with_extension(format!("lock.{}", std::process::id()));
        let write = |reason: std::io::Error| LockError::Write {
            path: path.clone(),
            reason: reason.to_string(),
        };
        std::fs::write(&temp, lock.to_text()).map_err(write)?;
        std::fs::rename(&temp, &path).map_err(|e| {
            let _ = std::fs::remove_file(&temp);
            write(e)
        })?;
    }
    Ok(Applied { path, changes })
}
