//! The derivation: what to build (`kind`, `name`, canonical `inputs`) and what
//! it needs first (`deps`), with the content-addressed hash that names its
//! output in the store. Derivations are immutable and shared (`Arc`), so a
//! graph of a thousand bottles that share a file holds that file once.
//!
//! This module knows nothing of how a kind is rendered (that is `lower`) or
//! where outputs are written (that is the store).

use super::hash::{Encoder, Hash, Unencodable, DERIVATION_DOMAIN};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

/// The fixed, machine-independent root under which derivation outputs are
/// named inside recipes and guests. On the host the same path is
/// `<store>/<hash>-<name>`; the guest sees it here. Because recipes only ever
/// see this root, no hash depends on where a user keeps their store.
pub const GUEST_STORE: &str = "/bottle/store";

/// Which renderer makes a derivation's output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// A regular file with the given text (`writeText`, `toTOML`, `toYAML`, `files`).
    File,
    /// The VM spec in smolvm's Smolfile vocabulary.
    Smolfile,
    /// gvproxy's configuration file.
    GvproxyConfig,
    /// Sidecar name → guest-visible port.
    PortMap,
    /// The egress sidecar's policy.
    EgressPolicy,
    /// The git gateway's policy.
    GitGateConfig,
    /// A bottle: a directory of its outputs and a manifest.
    Bottle,
    /// A host file or directory copied in by content (`{ dir = ./rootfs; }`).
    Source,
    /// A fixed-output fetch (`fetchurl`, `fetchTarball`): the only kind that
    /// touches the network, checked against the hash its inputs declare.
    Fetch,
    /// A Debian root tree built with mmdebstrap from a suite and packages.
    Debian,
    /// A guest root: one deterministic erofs image of a tree plus files.
    Rootfs,
    /// A root tree unpacked from a local OCI image layout or archive.
    Oci,
    /// An OCI image pulled by digest into a layout (fixed-output).
    OciPull,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::File => "file",
            Kind::Smolfile => "smolfile",
            Kind::GvproxyConfig => "gvproxy-config",
            Kind::PortMap => "port-map",
            Kind::EgressPolicy => "egress-policy",
            Kind::GitGateConfig => "git-gate-config",
            Kind::Bottle => "bottle",
            Kind::Source => "source",
            Kind::Fetch => "fetch",
            Kind::Debian => "debian",
            Kind::Rootfs => "rootfs",
            Kind::Oci => "oci",
            Kind::OciPull => "oci-pull",
        }
    }

    pub fn parse(text: &str) -> Option<Kind> {
        [
            Kind::File,
            Kind::Smolfile,
            Kind::GvproxyConfig,
            Kind::PortMap,
            Kind::EgressPolicy,
            Kind::GitGateConfig,
            Kind::Bottle,
            Kind::Source,
            Kind::Fetch,
            Kind::Debian,
            Kind::Rootfs,
            Kind::Oci,
            Kind::OciPull,
        ]
        .into_iter()
        .find(|k| k.as_str() == text)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name a derivation may have: it becomes part of a file name, so no
/// slashes, no leading dot, nothing a shell or a path would trip on.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum NameError {
    #[error("a derivation name cannot be empty")]
    Empty,
    #[error("a derivation name is at most 200 characters, `{0}…` is longer")]
    TooLong(String),
    #[error("a derivation name cannot start with `.`: `{0}`")]
    LeadingDot(String),
    #[error("`{name}` has `{bad}`, which a derivation name cannot hold (letters, digits and `+-._?=` only)")]
    BadChar { name: String, bad: char },
}

pub fn check_name(name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if name.len() > 200 {
        return Err(NameError::TooLong(name.chars().take(40).collect()));
    }
    if name.starts_with('.') {
        return Err(NameError::LeadingDot(name.to_string()));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "+-._?=".contains(*c)))
    {
        return Err(NameError::BadChar {
            name: name.to_string(),
            bad,
        });
    }
    Ok(())
}

/// One node of the build graph.
#[derive(Debug, PartialEq, Eq)]
pub struct Derivation {
    kind: Kind,
    name: String,
    inputs: Value,
    deps: Vec<Arc<Derivation>>,
    hash: Hash,
}

impl Derivation {
    /// Make a derivation and compute its hash. `deps` are sorted by hash and
    /// deduplicated, so the order a lowering lists them in never matters.
    /// Fails only if `inputs` holds a float (a bug in the caller) or the name
    /// is not a valid store name.
    pub fn new(
        kind: Kind,
        name: impl Into<String>,
        inputs: Value,
        deps: impl IntoIterator<Item = Arc<Derivation>>,
    ) -> Result<Arc<Derivation>, DerivationError> {
        let name = name.into();
        check_name(&name)?;
        let mut deps: Vec<Arc<Derivation>> = deps.into_iter().collect();
        deps.sort_by_key(|d| d.hash);
        deps.dedup_by_key(|d| d.hash);
        let dep_hashes: Vec<Hash> = deps.iter().map(|d| d.hash).collect();
        let hash = derivation_hash(kind, &name, &inputs, &dep_hashes)?;
        Ok(Arc::new(Derivation {
            kind,
            name,
            inputs,
            deps,
            hash,
        }))
    }

    pub fn kind(&self) -> Kind {
        self.kind
    }
    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn inputs(&self) -> &Value {
        &self.inputs
    }
    pub fn deps(&self) -> &[Arc<Derivation>] {
        &self.deps
    }
    pub fn hash(&self) -> Hash {
        self.hash
    }

    /// `<hash>-<name>`: the output's file name in the store.
    pub fn store_name(&self) -> String {
        format!("{}-{}", self.hash, self.name)
    }

    /// Where recipes and the guest see the output (see [`GUEST_STORE`]).
    pub fn guest_path(&self) -> String {
        format!("{GUEST_STORE}/{}", self.store_name())
    }

    /// Every derivation this one needs, itself included, each once, with
    /// dependencies before their dependents.
    pub fn closure(self: &Arc<Self>) -> Vec<Arc<Derivation>> {
        closure_of(std::slice::from_ref(self))
    }

    /// The derivation as a JSON record: what `show-derivation` prints and what
    /// the store keeps beside each output (keys sorted).
    pub fn to_record(&self) -> Value {
        super::hash::sorted_json(&serde_json::json!({
            "version": 1,
            "hash": self.hash.to_string(),
            "kind": self.kind,
            "name": self.name,
            "inputs": self.inputs,
            "deps": self.deps.iter().map(|d| d.store_name()).collect::<Vec<_>>(),
        }))
    }
}

/// The union of the closures of `roots`, each derivation once, dependencies first.
pub fn closure_of(roots: &[Arc<Derivation>]) -> Vec<Arc<Derivation>> {
    let mut seen: BTreeMap<Hash, ()> = BTreeMap::new();
    let mut order = Vec::new();
    // Iterative post-order walk: a fleet's graph can be wide, never deep,
    // but recursion depth should not be a recipe's choice.
    let mut stack: Vec<(Arc<Derivation>, bool)> =
        roots.iter().rev().map(|d| (d.clone(), false)).collect();
    while let Some((drv, expanded)) = stack.pop() {
        if seen.contains_key(&drv.hash) {
            continue;
        }
        if expanded {
            seen.insert(drv.hash, ());
            order.push(drv);
        } else {
            stack.push((drv.clone(), true));
            for dep in drv.deps.iter().rev() {
                if !seen.contains_key(&dep.hash) {
                    stack.push((dep.clone(), false));
                }
            }
        }
    }
    order
}

/// The derivation hash: blake3 over the canonical encoding of
/// `{deps, inputs, kind, name}` with each dependency given by its own hash.
pub fn derivation_hash(
    kind: Kind,
    name: &str,
    inputs: &Value,
    deps: &[Hash],
) -> Result<Hash, Unencodable> {
    let mut sorted: Vec<Hash> = deps.to_vec();
    sorted.sort();
    sorted.dedup();
    let mut e = Encoder::new(DERIVATION_DOMAIN);
    // Keys in byte order: deps, inputs, kind, name.
    e.map(4);
    e.str("deps");
    e.list(sorted.len());
    for h in &sorted {
        e.str(&h.to_string());
    }
    e.str("inputs");
    e.json(inputs)?;
    e.str("kind");
    e.str(kind.as_str());
    e.str("name");
    e.str(name);
    Ok(e.finish())
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum DerivationError {
    #[error(transparent)]
    Name(#[from] NameError),
    #[error(transparent)]
    Inputs(#[from] Unencodable),
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn file(name: &str, text: &str) -> Arc<Derivation> {
        Derivation::new(Kind::File, name, json!({ "text": text }), []).unwrap()
    }

    #[test]
    fn dependency_order_does_not_change_the_hash() {
        let a = file("a", "1");
        let b = file("b", "2");
        let x = Derivation::new(Kind::Bottle, "x", json!({}), [a.clone(), b.clone()]).unwrap();
        let y = Derivation::new(Kind::Bottle, "x", json!({}), [b, a]).unwrap();
        assert_eq!(x.hash(), y.hash());
    }

    #[test]
    fn a_changed_dependency_changes_the_dependent() {
        let x = Derivation::new(Kind::Bottle, "x", json!({}), [file("a", "1")]).unwrap();
        let y = Derivation::new(Kind::Bottle, "x", json!({}), [file("a", "2")]).unwrap();
        assert_ne!(x.hash(), y.hash());
    }

    #[test]
    fn closure_lists_dependencies_first_and_once() {
        let shared = file("shared", "s");
        let a = Derivation::new(Kind::Bottle, "a", json!({}), [shared.clone()]).unwrap();
        let b = Derivation::new(Kind::Bottle, "b", json!({}), [shared.clone()]).unwrap();
        let all = closure_of(&[a.clone(), b.clone()]);
        assert_eq!(all.len(), 3);
        assert_eq!(all[0].hash(), shared.hash());
    }

    #[test]
    fn bad_names_are_refused() {
        assert!(check_name("smolfile.toml").is_ok());
        assert!(check_name("a/b").is_err());
        assert!(check_name(".hidden").is_err());
        assert!(check_name("").is_err());
    }
}
