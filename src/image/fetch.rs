//! Fixed-output fetches: `builtins.fetchurl { url; hash; }` and
//! `builtins.fetchTarball { url; hash; }`. The derivation declares the SRI
//! hash (`sha256-…` or `sha512-…`) of the bytes at `url`; building it
//! downloads them (curl), compares, and only then lets the output land, so a
//! wrong hash leaves nothing in the store and says which hash it got. A
//! tarball is unpacked after the check, with a single top-level directory
//! stripped (npm's `package/`, GitHub's `repo-rev/`), as Nix does.
//!
//! Unlike Nix's `fetchTarball`, the hash is of the archive as downloaded
//! (what registries publish, e.g. npm's `integrity`), not of the unpacked tree.

use super::{curl, io, run};
use crate::store::{Derivation, Kind, Output, RenderError};
use sha2::Digest;
use std::fs;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;

/// A parsed SRI hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sri {
    pub algorithm: Algorithm,
    pub digest: Vec<u8>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Algorithm {
    Sha256,
    Sha512,
}

impl Algorithm {
    fn name(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha512 => "sha512",
        }
    }
    fn len(self) -> usize {
        match self {
            Algorithm::Sha256 => 32,
            Algorithm::Sha512 => 64,
        }
    }
}

impl Sri {
    /// `sha256-<base64>` or `sha512-<base64>`.
    pub fn parse(text: &str) -> Result<Sri, String> {
        let (name, b64) = text
            .split_once('-')
            .ok_or_else(|| format!("`{text}` is not an SRI hash (`sha256-…` or `sha512-…`)"))?;
        let algorithm = match name {
            "sha256" => Algorithm::Sha256,
            "sha512" => Algorithm::Sha512,
            other => {
                return Err(format!(
                    "`{other}` hashes are not supported; give `sha256-…` or `sha512-…`"
                ))
            }
        };
        let digest = base64_decode(b64)
            .ok_or_else(|| format!("`{text}` does not hold valid base64 after `{name}-`"))?;
        if digest.len() != algorithm.len() {
            return Err(format!(
                "`{text}` has {} bytes of digest; {name} has {}",
                digest.len(),
                algorithm.len()
            ));
        }
        Ok(Sri { algorithm, digest })
    }

    /// The SRI text of `bytes`' digest by `algorithm`.
    pub fn of_file(algorithm: Algorithm, path: &Path) -> std::io::Result<Sri> {
        let mut file = fs::File::open(path)?;
        let digest = match algorithm {
            Algorithm::Sha256 => {
                let mut h = sha2::Sha256::new();
                std::io::copy(&mut file, &mut h)?;
                h.finalize().to_vec()
            }
            Algorithm::Sha512 => {
                let mut h = sha2::Sha512::new();
                std::io::copy(&mut file, &mut h)?;
                h.finalize().to_vec()
            }
        };
        Ok(Sri { algorithm, digest })
    }
}

impl std::fmt::Display for Sri {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}-{}",
            self.algorithm.name(),
            base64_encode(&self.digest)
        )
    }
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

pub(crate) fn base64_encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(B64[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let text = text.trim_end_matches('=');
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for c in text.bytes() {
        let v = B64.iter().position(|&b| b == c)? as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// A fixed-output fetch derivation. `unpack` makes it a tarball fetch.
pub fn fetch(name: &str, url: &str, hash: &Sri, unpack: bool) -> Result<Arc<Derivation>, String> {
    Derivation::new(
        Kind::Fetch,
        name,
        serde_json::json!({ "url": url, "hash": hash.to_string(), "unpack": unpack }),
        [],
    )
    .map_err(|e| e.to_string())
}

/// The store name a URL gives when the recipe names none: its last path
/// segment, cleaned.
pub fn name_from_url(url: &str) -> String {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    let last = path.trim_end_matches('/').rsplit('/').next().unwrap_or("");
    super::tree::store_name(if last.is_empty() || last.contains(':') {
        "download"
    } else {
        last
    })
}

pub fn render(drv: &Derivation) -> Result<Output, RenderError> {
    let inputs = drv.inputs();
    let url = inputs["url"]
        .as_str()
        .ok_or_else(|| RenderError("fetch inputs have no `url`".into()))?;
    let want = inputs["hash"]
        .as_str()
        .ok_or_else(|| RenderError("fetch inputs have no `hash`".into()))
        .and_then(|h| Sri::parse(h).map_err(RenderError))?;
    let unpack = inputs["unpack"].as_bool().unwrap_or(false);
    let scratch = crate::store::scratch_dir().map_err(io("making a scratch directory"))?;
    let file = scratch.path().join("download");
    run(curl()
        .args(["--connect-timeout", "30", "--retry", "2", "--output"])
        .arg(&file)
        .arg("--")
        .arg(url))
    .map_err(|e| RenderError(format!("downloading {url}: {}", e.0)))?;
    let got = Sri::of_file(want.algorithm, &file).map_err(io("hashing the download"))?;
    if got != want {
        // A lock's Debian pins are hex, as the archive's index writes them.
        let hex = |s: &Sri| {
            s.digest
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        };
        let hexes = if want.algorithm == Algorithm::Sha256 {
            format!(
                "\n  (in hex:   specified {}, got {})",
                hex(&want),
                hex(&got)
            )
        } else {
            String::new()
        };
        return Err(RenderError(format!(
            "hash mismatch in fixed-output derivation {}:\n  url:       {url}\n  specified: {want}\n  got:       {got}{hexes}",
            drv.name()
        )));
    }
    let staged = crate::store::staging_path(drv.name());
    if !unpack {
        fs::rename(&file, &staged).map_err(io("staging the download"))?;
        fs::set_permissions(&staged, std::os::unix::fs::PermissionsExt::from_mode(0o444))
            .map_err(io("staging the download"))?;
        return Ok(Output::Staged(staged));
    }
    let tree = scratch.path().join("tree");
    fs::create_dir(&tree).map_err(io("making the unpack directory"))?;
    run(Command::new("tar")
        .arg("-xf")
        .arg(&file)
        .arg("-C")
        .arg(&tree)
        .args(["--no-same-owner", "--delay-directory-restore"]))
    .map_err(|e| RenderError(format!("unpacking {url}: {}", e.0)))?;
    // One top-level directory is the archive's wrapper: strip it.
    let entries: Vec<_> = fs::read_dir(&tree)
        .map_err(io("reading the unpacked tree"))?
        .collect::<Result<_, _>>()
        .map_err(io("reading the unpacked tree"))?;
    let root = match entries.as_slice() {
        [one] if one.file_type().is_ok_and(|t| t.is_dir()) => one.path(),
        _ => tree,
    };
    fs::rename(&root, &staged).map_err(io("staging the unpacked tree"))?;
    Ok(Output::Staged(staged))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sri_round_trips() {
        let text = "sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=";
        let sri = Sri::parse(text).unwrap();
        assert_eq!(sri.algorithm, Algorithm::Sha256);
        assert_eq!(sri.to_string(), text);
        let dir = tempfile::tempdir().unwrap();
        let empty = dir.path().join("e");
        fs::write(&empty, "").unwrap();
        assert_eq!(Sri::of_file(Algorithm::Sha256, &empty).unwrap(), sri);
    }

    #[test]
    fn bad_sri_is_refused() {
        assert!(Sri::parse("md5-abc").is_err());
        assert!(Sri::parse("sha256-AAAA").is_err());
        assert!(Sri::parse("nohash").is_err());
    }

    #[test]
    fn names_from_urls() {
        assert_eq!(name_from_url("https://x.org/a/b-1.0.tgz?x=1"), "b-1.0.tgz");
        assert_eq!(name_from_url("https://x.org/"), "x.org");
    }
}
