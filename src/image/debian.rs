//! Debian package trees: `{ debian = { suite = "bookworm"; packages = [ … ]; }; }`.
//!
//! Pinned in two steps, as Nix would:
//!
//! 1. **Resolution** (`bottle lock`, or the first build without a lock):
//!    the suite's `InRelease` is fetched from the mirror and checked with
//!    `gpgv` against Debian's archive keyring, the `main/binary-amd64`
//!    `Packages.xz` it names is fetched and checked against its SHA256, and
//!    the package names are closed over `Depends`/`Pre-Depends` together
//!    with what mmdebstrap's `minbase` installs (`Essential: yes`,
//!    `Priority: required`, `apt`). Every package of the closure, with its
//!    exact version, pool file name, size and SHA256, goes into `bottle.lock`.
//! 2. **Build**: each `.deb` is a fixed-output `fetch` (its SHA256 from the
//!    lock); the `debian` derivation depends on them, makes a local apt
//!    repository of those files only (a `Packages` index written from their
//!    control data) and runs `mmdebstrap` on it (`essential` variant, every
//!    locked package included, `SOURCE_DATE_EPOCH=0`). No index is read from
//!    the network at build time, so the tree is the lock's, offline too.
//!
//! Then what would make the tree depend on the host or the day is removed:
//! `/etc/resolv.conf`, `/etc/hostname`, the machine id, apt's indexes, logs
//! and caches, and the local repository's line in apt's sources (replaced by
//! the recipe's mirror). `/dev` is left empty (the guest mounts devtmpfs
//! there). The installed versions are recorded at `/etc/bottle-packages`.

use super::fetch::{Algorithm, Sri};
use super::{curl, io, run, run_output, store_root};
use crate::store::{Derivation, Kind, Output, RenderError};
use serde::{Deserialize, Serialize};
use sha2::Digest;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::fs;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

/// The default mirror: Debian's CDN, as the host's apt sources use it.
pub const DEFAULT_MIRROR: &str = "http://deb.debian.org/debian";

/// Where Debian's archive signing keys are (the `debian-archive-keyring` package).
pub const KEYRING: &str = "/usr/share/keyrings/debian-archive-keyring.gpg";

/// One package of a locked closure: what the archive's index says of it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Deb {
    pub version: String,
    pub architecture: String,
    /// The path of the `.deb` under the mirror (`pool/main/…`).
    pub filename: String,
    /// Hex SHA256 of the `.deb`.
    pub sha256: String,
    pub size: u64,
}

/// A locked closure: package name → its pinned file.
pub type Closure = BTreeMap<String, Deb>;

/// The fixed-output fetch of one locked `.deb` from `mirror`.
pub fn deb_fetch(mirror: &str, deb: &Deb) -> Result<Arc<Derivation>, String> {
    let digest = hex_decode(&deb.sha256)
        .filter(|d| d.len() == 32)
        .ok_or_else(|| format!("`{}` is not a SHA256 in hex", deb.sha256))?;
    let sri = Sri {
        algorithm: Algorithm::Sha256,
        digest,
    };
    let base = deb.filename.rsplit('/').next().unwrap_or(&deb.filename);
    let url = format!("{}/{}", mirror.trim_end_matches('/'), deb.filename);
    super::fetch::fetch(&super::tree::store_name(base), &url, &sri, false)
}

fn hex_decode(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The `debian` derivation of a package set (sorted, each once) and its
/// locked closure: one fetch per `.deb`, the tree built from those alone.
pub fn debian(
    suite: &str,
    packages: &[String],
    mirror: &str,
    closure: &Closure,
) -> Result<Arc<Derivation>, String> {
    let mut packages = packages.to_vec();
    packages.sort();
    packages.dedup();
    let debs = closure
        .values()
        .map(|deb| deb_fetch(mirror, deb))
        .collect::<Result<Vec<_>, _>>()?;
    Derivation::new(
        Kind::Debian,
        format!("debian-{}", super::tree::store_name(suite)),
        serde_json::json!({
            "version": 2,
            "suite": suite,
            "packages": packages,
            "mirror": mirror,
            "variant": "essential",
            "debs": debs.iter().map(|d| d.store_name()).collect::<Vec<_>>(),
        }),
        debs,
    )
    .map_err(|e| e.to_string())
}

/// One stanza of a `Packages` index, the fields resolution reads.
#[derive(Debug, Default)]
struct Stanza {
    version: String,
    architecture: String,
    filename: String,
    sha256: String,
    size: u64,
    essential: bool,
    required: bool,
    depends: Vec<Vec<String>>,
    provides: Vec<String>,
}

/// `a (>= 1) | b:any, c` → `[[a, b], [c]]`: names only (the suite holds one
/// version of each), architecture qualifiers dropped.
fn relations(text: &str) -> Vec<Vec<String>> {
    text.split(',')
        .map(|clause| {
            clause
                .split('|')
                .filter_map(|alt| {
                    let name = alt.trim().split([' ', '(', '[']).next().unwrap_or("");
                    let name = name.split(':').next().unwrap_or(name);
                    (!name.is_empty()).then(|| name.to_string())
                })
                .collect::<Vec<_>>()
        })
        .filter(|alts| !alts.is_empty())
        .collect()
}

/// Parse a `Packages` index (amd64 and `all` packages of one suite).
fn parse_index(text: &str) -> HashMap<String, Stanza> {
    let mut index = HashMap::new();
    for block in text.split("\n\n") {
        let mut name = None;
        let mut s = Stanza::default();
        for line in block.lines() {
            if line.starts_with([' ', '\t']) {
                continue;
            }
            let Some((key, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim();
            match key {
                "Package" => name = Some(value.to_string()),
                "Version" => s.version = value.into(),
                "Architecture" => s.architecture = value.into(),
                "Filename" => s.filename = value.into(),
                "SHA256" => s.sha256 = value.into(),
                "Size" => s.size = value.parse().unwrap_or(0),
                "Essential" => s.essential = value == "yes",
                "Priority" => s.required = value == "required",
                "Depends" | "Pre-Depends" => s.depends.extend(relations(value)),
                "Provides" => s.provides.extend(relations(value).into_iter().flatten()),
                _ => {}
            }
        }
        if let Some(name) = name {
            // The first stanza of a name wins (an index holds one version).
            index.entry(name).or_insert(s);
        }
    }
    index
}

/// Close `wanted` (plus minbase's set) over dependencies: the packages to
/// install, each once. Deterministic: names are visited in order, and of a
/// dependency's alternatives the first real package is taken (or the first
/// provider, by name, of a virtual one) unless one is already chosen.
fn close(index: &HashMap<String, Stanza>, wanted: &[String]) -> Result<Closure, String> {
    let mut providers: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for (name, s) in index {
        for p in &s.provides {
            providers
                .entry(p.as_str())
                .or_default()
                .insert(name.as_str());
        }
    }
    let mut roots: Vec<String> = index
        .iter()
        .filter(|(_, s)| s.essential || s.required)
        .map(|(n, _)| n.clone())
        .collect();
    roots.sort();
    roots.push("apt".into());
    roots.extend(wanted.iter().cloned());
    let pick = |name: &str| -> Option<String> {
        if index.contains_key(name) {
            return Some(name.to_string());
        }
        providers
            .get(name)
            .and_then(|p| p.iter().next())
            .map(|p| p.to_string())
    };
    let mut queued: BTreeSet<String> = BTreeSet::new();
    let mut provided: BTreeSet<String> = BTreeSet::new();
    let mut queue: VecDeque<String> = VecDeque::new();
    // What is queued counts as there: its provides too.
    let enqueue = |chosen: String,
                   queued: &mut BTreeSet<String>,
                   provided: &mut BTreeSet<String>,
                   queue: &mut VecDeque<String>| {
        if queued.insert(chosen.clone()) {
            provided.extend(index[&chosen].provides.iter().cloned());
            queue.push_back(chosen);
        }
    };
    for root in &roots {
        let chosen = pick(root).ok_or_else(|| {
            format!("there is no package `{root}` in the suite (nor one that provides it)")
        })?;
        enqueue(chosen, &mut queued, &mut provided, &mut queue);
    }
    let mut closure = Closure::new();
    while let Some(name) = queue.pop_front() {
        let s = &index[&name];
        for alts in &s.depends {
            if alts
                .iter()
                .any(|a| queued.contains(a) || provided.contains(a))
            {
                continue;
            }
            let chosen = alts.iter().find_map(|a| pick(a)).ok_or_else(|| {
                format!(
                    "`{name}` depends on {}, which the suite does not have",
                    alts.join(" | ")
                )
            })?;
            enqueue(chosen, &mut queued, &mut provided, &mut queue);
        }
        closure.insert(
            name,
            Deb {
                version: s.version.clone(),
                architecture: s.architecture.clone(),
                filename: s.filename.clone(),
                sha256: s.sha256.clone(),
                size: s.size,
            },
        );
    }
    Ok(closure)
}

fn download(url: &str, to: &Path) -> Result<(), String> {
    run(curl()
        .args(["--connect-timeout", "20", "--max-time", "300", "--output"])
        .arg(to)
        .arg("--")
        .arg(url))
    .map_err(|e| format!("downloading {url}: {}", e.0))
}

/// Resolve a package set against `mirror`'s signed index of `suite`: the
/// closure to lock. Reads the network (the mirror).
pub fn resolve(suite: &str, mirror: &str, packages: &[String]) -> Result<Closure, String> {
    let dir = tempfile::tempdir().map_err(|e| format!("making a temporary directory: {e}"))?;
    let base = format!("{}/dists/{suite}", mirror.trim_end_matches('/'));
    let signed = dir.path().join("InRelease");
    download(&format!("{base}/InRelease"), &signed)?;
    if !Path::new(KEYRING).is_file() {
        return Err(format!(
            "{KEYRING} is missing, so the archive's signature cannot be checked (install `debian-archive-keyring`)"
        ));
    }
    let release = dir.path().join("Release");
    run(Command::new("gpgv")
        .arg("--keyring")
        .arg(KEYRING)
        .arg("--output")
        .arg(&release)
        .arg(&signed))
    .map_err(|e| format!("the signature of {base}/InRelease does not verify: {}", e.0))?;
    let release = fs::read_to_string(&release).map_err(|e| format!("reading Release: {e}"))?;
    let wanted_file = "main/binary-amd64/Packages.xz";
    let mut in_sha256 = false;
    let mut want = None;
    for line in release.lines() {
        if !line.starts_with(' ') {
            in_sha256 = line.starts_with("SHA256:");
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        if in_sha256 && fields.len() == 3 && fields[2] == wanted_file {
            want = Some(fields[0].to_string());
        }
    }
    let want = want.ok_or_else(|| format!("{base}/InRelease does not list {wanted_file}"))?;
    let xz = dir.path().join("Packages.xz");
    download(&format!("{base}/{wanted_file}"), &xz)?;
    let got = Sri::of_file(Algorithm::Sha256, &xz).map_err(|e| format!("hashing: {e}"))?;
    if hex(&got.digest) != want {
        return Err(format!(
            "{base}/{wanted_file} is not the file InRelease names (sha256 {} there, {} got)",
            want,
            hex(&got.digest)
        ));
    }
    let text = run_output(Command::new("xz").arg("-dc").arg(&xz))
        .map_err(|e| format!("unpacking the index: {}", e.0))?;
    let index = parse_index(&String::from_utf8_lossy(&text));
    close(&index, packages)
}

pub fn render(drv: &Derivation) -> Result<Output, RenderError> {
    let store = store_root()?;
    let inputs = drv.inputs();
    let field = |key: &str| {
        inputs[key]
            .as_str()
            .ok_or_else(|| RenderError(format!("debian inputs have no `{key}`")))
    };
    let (suite, mirror, variant) = (field("suite")?, field("mirror")?, field("variant")?);
    let debs: Vec<&str> = inputs["debs"]
        .as_array()
        .map(|list| list.iter().filter_map(|p| p.as_str()).collect())
        .unwrap_or_default();
    if debs.is_empty() {
        return Err(RenderError(
            "this Debian image is not locked: run `bottle lock RECIPE`".into(),
        ));
    }
    let scratch = crate::store::scratch_dir().map_err(io("making a scratch directory"))?;
    let repo = scratch.path().join("repo");
    let names = local_repository(&store, &repo, suite, &debs)?;
    let staged = crate::store::staging_path(drv.name());
    let mut command = Command::new("mmdebstrap");
    command
        .env("SOURCE_DATE_EPOCH", "0")
        .env("LC_ALL", "C.UTF-8")
        .arg(format!("--variant={variant}"))
        .args(["--mode=root", "--format=directory", "--quiet"])
        .args(["--skip=output/dev", "--skip=output/mknod"])
        // The local repository only; not the host's apt settings or proxies.
        .arg("--aptopt=Acquire::Check-Valid-Until \"false\"")
        .arg("--aptopt=APT::Install-Recommends \"false\"")
        .arg("--dpkgopt=path-exclude=/usr/share/doc/*")
        .arg("--dpkgopt=path-include=/usr/share/doc/*/copyright")
        .arg("--dpkgopt=path-exclude=/usr/share/man/*")
        .arg("--dpkgopt=path-exclude=/usr/share/locale/*")
        .arg("--dpkgopt=path-exclude=/usr/share/info/*")
        .arg(format!("--include={}", names.join(",")))
        .arg(suite)
        .arg(&staged)
        .arg(format!(
            "deb [trusted=yes] copy://{} {suite} main",
            repo.display()
        ));
    if let Err(e) = run(&mut command) {
        let _ = crate::store::output::remove_all(&staged);
        return Err(e);
    }
    if let Err(e) = scrub(&staged, suite, mirror) {
        let _ = crate::store::output::remove_all(&staged);
        return Err(e);
    }
    Ok(Output::Staged(staged))
}

/// An apt repository at `repo` holding the store's `.deb`s `debs` (hard
/// links): `pool/`, and `dists/SUITE/main/binary-amd64/Packages` written
/// from each file's control data. The package names, sorted.
fn local_repository(
    store: &Path,
    repo: &Path,
    suite: &str,
    debs: &[&str],
) -> Result<Vec<String>, RenderError> {
    let pool = repo.join("pool");
    let lists = repo.join(format!("dists/{suite}/main/binary-amd64"));
    fs::create_dir_all(&pool).map_err(io("making the local repository"))?;
    fs::create_dir_all(&lists).map_err(io("making the local repository"))?;
    let mut stanzas = BTreeMap::new();
    for deb in debs {
        let from = store.join(deb);
        let file = pool.join(deb);
        if fs::hard_link(&from, &file).is_err() {
            fs::copy(&from, &file).map_err(io(format!("copying {deb}")))?;
        }
        let control = run_output(Command::new("dpkg-deb").arg("-f").arg(&file))
            .map_err(|e| RenderError(format!("reading {deb}: {}", e.0)))?;
        let control = String::from_utf8_lossy(&control).trim_end().to_string();
        let name = control
            .lines()
            .find_map(|l| l.strip_prefix("Package:"))
            .map(|n| n.trim().to_string())
            .ok_or_else(|| RenderError(format!("{deb} has no `Package` field")))?;
        let mut hasher = sha2::Sha256::new();
        let size = std::io::copy(
            &mut fs::File::open(&file).map_err(io(format!("reading {deb}")))?,
            &mut hasher,
        )
        .map_err(io(format!("reading {deb}")))?;
        let stanza = format!(
            "{control}\nFilename: pool/{deb}\nSize: {size}\nSHA256: {}\n",
            hex(&hasher.finalize())
        );
        stanzas.insert(name, stanza);
    }
    let packages: Vec<&str> = stanzas.values().map(String::as_str).collect();
    let packages = packages.join("\n");
    fs::write(lists.join("Packages"), &packages).map_err(io("writing Packages"))?;
    let release = format!(
        "Origin: bottle\nSuite: {suite}\nCodename: {suite}\nDate: Thu, 01 Jan 1970 00:00:00 UTC\nArchitectures: amd64\nComponents: main\nSHA256:\n {} {} main/binary-amd64/Packages\n",
        hex(&sha2::Sha256::digest(packages.as_bytes())),
        packages.len()
    );
    fs::write(repo.join(format!("dists/{suite}/Release")), release)
        .map_err(io("writing Release"))?;
    Ok(stanzas.into_keys().collect())
}

/// Remove what depends on the host or the day, point apt at the recipe's
/// mirror, and record the package list.
fn scrub(root: &Path, suite: &str, mirror: &str) -> Result<(), RenderError> {
    let listing = Command::new("chroot")
        .arg(root)
        .args([
            "dpkg-query",
            "-W",
            "-f",
            "${Package} ${Version} ${Architecture}\\n",
        ])
        .output()
        .map_err(io("listing the installed packages"))?;
    let mut lines: Vec<&str> = std::str::from_utf8(&listing.stdout)
        .unwrap_or("")
        .lines()
        .collect();
    lines.sort();
    fs::write(root.join("etc/bottle-packages"), lines.join("\n") + "\n")
        .map_err(io("writing /etc/bottle-packages"))?;
    for file in [
        "etc/resolv.conf",
        "etc/hostname",
        "var/cache/ldconfig/aux-cache",
    ] {
        let _ = fs::remove_file(root.join(file));
    }
    // An empty machine id: systemd-less guests never read it, and it is not the host's.
    fs::write(root.join("etc/machine-id"), "").map_err(io("writing /etc/machine-id"))?;
    // The build's local repository is a host path: apt in the guest uses the mirror.
    let sources_d = root.join("etc/apt/sources.list.d");
    if let Ok(entries) = fs::read_dir(&sources_d) {
        for entry in entries.flatten() {
            let _ = crate::store::output::remove_all(&entry.path());
        }
    }
    fs::write(
        root.join("etc/apt/sources.list"),
        format!("deb {mirror} {suite} main\n"),
    )
    .map_err(io("writing /etc/apt/sources.list"))?;
    for dir in [
        "var/lib/apt/lists",
        "var/cache/apt",
        "var/log",
        "tmp",
        "run",
        "dev",
    ] {
        let path = root.join(dir);
        let Ok(entries) = fs::read_dir(&path) else {
            continue;
        };
        for entry in entries.flatten() {
            // apt's lock files and partial/ directories are recreated as needed.
            let _ = crate::store::output::remove_all(&entry.path());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const INDEX: &str = "Package: base\nVersion: 1\nArchitecture: amd64\nEssential: yes\nDepends: libc6 (>= 2), awk\nFilename: pool/b.deb\nSHA256: 00\nSize: 1\n\n\
Package: libc6\nVersion: 2.36\nArchitecture: amd64\nPriority: required\nFilename: pool/l.deb\nSHA256: 11\nSize: 2\n\n\
Package: mawk\nVersion: 1.3\nArchitecture: amd64\nPriority: required\nProvides: awk\nFilename: pool/m.deb\nSHA256: 22\nSize: 3\n\n\
Package: gawk\nVersion: 5\nArchitecture: amd64\nProvides: awk\nFilename: pool/g.deb\nSHA256: 33\nSize: 4\n\n\
Package: apt\nVersion: 2.6\nArchitecture: amd64\nDepends: libc6\nFilename: pool/a.deb\nSHA256: 44\nSize: 5\n\n\
Package: git\nVersion: 1:2.39\nArchitecture: amd64\nDepends: libc6, perl | perl-base:any, less\nFilename: pool/git.deb\nSHA256: 55\nSize: 6\n\n\
Package: perl-base\nVersion: 5.36\nArchitecture: amd64\nFilename: pool/p.deb\nSHA256: 66\nSize: 7\n\n\
Package: less\nVersion: 590\nArchitecture: amd64\nFilename: pool/less.deb\nSHA256: 77\nSize: 8\n";

    #[test]
    fn closes_over_dependencies_virtuals_and_minbase() {
        let index = parse_index(INDEX);
        let closure = close(&index, &["git".into()]).unwrap();
        let names: Vec<&str> = closure.keys().map(String::as_str).collect();
        // `awk` is mawk's (required, so already there), not gawk's; `perl |
        // perl-base:any` takes the first real alternative.
        assert_eq!(
            names,
            ["apt", "base", "git", "less", "libc6", "mawk", "perl-base"]
        );
        assert_eq!(closure["git"].version, "1:2.39");
        assert_eq!(closure["git"].filename, "pool/git.deb");
        assert!(close(&index, &["nope".into()]).is_err());
    }

    #[test]
    fn relations_drop_versions_and_qualifiers() {
        assert_eq!(
            relations("a (>= 1) | b:any, c [amd64]"),
            vec![vec!["a".to_string(), "b".into()], vec!["c".into()]]
        );
    }
}
