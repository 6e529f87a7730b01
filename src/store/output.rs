//! What a renderer produces (a file, a symlink, or a directory of them), how
//! it is written to disk, and its content hash, computed the same way from
//! memory at build time and from disk when the store is verified.

use super::hash::{Encoder, Hash, OUTPUT_DOMAIN};
use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// A rendered output, before it is in the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// A regular, read-only file.
    File(Vec<u8>),
    /// A symbolic link; store renderers only make relative ones (`../<hash>-x`),
    /// so a store directory can move without breaking them.
    Symlink(String),
    /// A directory; entry names are single path components.
    Dir(BTreeMap<String, Output>),
    /// A file or tree a renderer already wrote on disk, under the store's
    /// scratch directory (see [`super::scratch_dir`]): images and fetches,
    /// too large to hold in memory, with owners and modes that matter.
    /// Writing it is a rename.
    Staged(std::path::PathBuf),
}

impl Output {
    /// Content hash: blake3 over the canonical tree encoding (see docs/store.md).
    pub fn content_hash(&self) -> Hash {
        if let Output::Staged(path) = self {
            // Same encoding, read from disk; a staged output that cannot be
            // read is caught when it is renamed into place.
            return content_hash_on_disk(path)
                .unwrap_or_else(|_| Encoder::new(OUTPUT_DOMAIN).finish());
        }
        let mut e = Encoder::new(OUTPUT_DOMAIN);
        encode(&mut e, self);
        e.finish()
    }

    /// Write this output at `path`, which must not exist yet.
    pub fn write(&self, path: &Path) -> io::Result<()> {
        match self {
            Output::File(bytes) => {
                use std::io::Write;
                use std::os::unix::fs::OpenOptionsExt;
                // Read-only from creation: one syscall fewer than a chmod after.
                let mut file = fs::File::options()
                    .write(true)
                    .create_new(true)
                    .mode(0o444)
                    .open(path)?;
                file.write_all(bytes)
            }
            Output::Symlink(target) => std::os::unix::fs::symlink(target, path),
            Output::Staged(staged) => fs::rename(staged, path),
            Output::Dir(entries) => {
                fs::create_dir(path)?;
                for (name, entry) in entries {
                    entry.write(&path.join(name))?;
                }
                Ok(())
            }
        }
    }
}

fn encode(e: &mut Encoder, output: &Output) {
    match output {
        Output::File(bytes) => e.bytes_tagged(b'F', bytes),
        Output::Symlink(target) => e.bytes_tagged(b'L', target.as_bytes()),
        Output::Staged(path) => {
            // Only reached inside a directory output, which no renderer
            // builds around a staged one; hash what is there.
            let _ = encode_disk(e, path);
        }
        Output::Dir(entries) => {
            e.tag(b'D');
            e.list(entries.len());
            // BTreeMap iterates in byte order of the names, as the encoding requires.
            for (name, entry) in entries {
                e.str(name);
                encode(e, entry);
            }
        }
    }
}

/// Content hash of what is on disk at `path`, by the same encoding as
/// [`Output::content_hash`]. Anything that is not a file, a symlink or a
/// directory (a socket, a fifo) is an error: no renderer makes one.
pub fn content_hash_on_disk(path: &Path) -> io::Result<Hash> {
    let mut e = Encoder::new(OUTPUT_DOMAIN);
    encode_disk(&mut e, path)?;
    Ok(e.finish())
}

fn encode_disk(e: &mut Encoder, path: &Path) -> io::Result<()> {
    let meta = fs::symlink_metadata(path)?;
    let kind = meta.file_type();
    if kind.is_symlink() {
        let target = fs::read_link(path)?;
        e.bytes_tagged(b'L', target.as_os_str().as_encoded_bytes());
    } else if kind.is_file() {
        e.reader_tagged(b'F', meta.len(), &mut fs::File::open(path)?)?;
    } else if kind.is_dir() {
        let mut names: Vec<String> = Vec::new();
        for entry in fs::read_dir(path)? {
            let name = entry?.file_name();
            names.push(name.into_string().map_err(|n| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{n:?} is not a UTF-8 file name"),
                )
            })?);
        }
        names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        e.tag(b'D');
        e.list(names.len());
        for name in names {
            e.str(&name);
            encode_disk(e, &path.join(&name))?;
        }
    } else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{} is not a file, link or directory", path.display()),
        ));
    }
    Ok(())
}

/// Bytes used by everything under `path` (for gc's report).
pub fn disk_usage(path: &Path) -> u64 {
    let Ok(meta) = fs::symlink_metadata(path) else {
        return 0;
    };
    if meta.is_dir() {
        fs::read_dir(path)
            .map(|entries| entries.flatten().map(|e| disk_usage(&e.path())).sum())
            .unwrap_or(0)
    } else {
        meta.len()
    }
}

/// Remove whatever is at `path`, making read-only directories writable first.
pub fn remove_all(path: &Path) -> io::Result<()> {
    let meta = match fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if meta.is_dir() {
        let _ = fs::set_permissions(path, fs::Permissions::from_mode(0o755));
        fs::remove_dir_all(path)
    } else {
        fs::remove_file(path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_from_memory_equals_hash_from_disk() {
        let dir = tempfile::tempdir().unwrap();
        let out = Output::Dir(BTreeMap::from([
            ("b.txt".to_string(), Output::File(b"two".to_vec())),
            ("a.txt".to_string(), Output::File(b"one".to_vec())),
            ("link".to_string(), Output::Symlink("../x".to_string())),
            (
                "sub".to_string(),
                Output::Dir(BTreeMap::from([("c".to_string(), Output::File(vec![]))])),
            ),
        ]));
        let path = dir.path().join("out");
        out.write(&path).unwrap();
        assert_eq!(content_hash_on_disk(&path).unwrap(), out.content_hash());
        fs::set_permissions(path.join("a.txt"), fs::Permissions::from_mode(0o644)).unwrap();
        fs::write(path.join("a.txt"), "changed").unwrap();
        assert_ne!(content_hash_on_disk(&path).unwrap(), out.content_hash());
    }

    #[test]
    fn file_and_directory_do_not_collide() {
        let file = Output::File(Vec::new());
        let dir = Output::Dir(BTreeMap::new());
        assert_ne!(file.content_hash(), dir.content_hash());
    }
}
