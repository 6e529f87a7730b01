//! The guest's root file system, read from the recipe's image into archive
//! entries: a local directory tree or an uncompressed tar file. Entries come
//! out sorted by path with the owners and modes of the source, so the same
//! tree always gives the same initramfs bytes (mtimes are not kept).
use super::cpio::{Entry, Meta};
use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

/// Why a rootfs could not be read.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum RootfsError {
    #[error("cannot read the rootfs at {path}: {source}")]
    #[diagnostic(help("the image must be a directory or a .tar file readable by bottle"))]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a rootfs bottle can read")]
    #[diagnostic(help(
        "give a directory or an uncompressed .tar (decompress .tar.gz / .tar.zst first)"
    ))]
    Unsupported { path: PathBuf },
    #[error("the tar file {path} is damaged: {reason}")]
    #[diagnostic(help("check the file with `tar -tvf`"))]
    BadTar { path: PathBuf, reason: String },
}

/// Read the rootfs at `path` (a directory or a `.tar`) into sorted entries.
pub fn read(path: &Path) -> Result<Vec<Entry>, RootfsError> {
    let meta = fs::metadata(path).map_err(|source| RootfsError::Read {
        path: path.into(),
        source,
    })?;
    let mut entries = BTreeMap::new();
    if meta.is_dir() {
        walk(path, path, &mut entries)?;
    } else if path.extension().is_some_and(|e| e == "tar") {
        let bytes = fs::read(path).map_err(|source| RootfsError::Read {
            path: path.into(),
            source,
        })?;
        read_tar(path, &bytes, &mut entries)?;
    } else {
        return Err(RootfsError::Unsupported { path: path.into() });
    }
    Ok(entries.into_values().collect())
}

fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Entry>) -> Result<(), RootfsError> {
    let error = |source| RootfsError::Read {
        path: dir.into(),
        source,
    };
    let mut children: Vec<_> = fs::read_dir(dir)
        .map_err(error)?
        .collect::<Result<_, _>>()
        .map_err(error)?;
    children.sort_by_key(|e| e.file_name());
    for child in children {
        let path = child.path();
        let error = |source| RootfsError::Read {
            path: path.clone(),
            source,
        };
        let relative = path
            .strip_prefix(root)
            .expect("walk stays under the root")
            .to_string_lossy()
            .into_owned();
        let m = fs::symlink_metadata(&path).map_err(error)?;
        let meta = Meta {
            mode: m.mode() & 0o7777,
            uid: m.uid(),
            gid: m.gid(),
        };
        let kind = m.file_type();
        let entry = if kind.is_dir() {
            out.insert(
                relative.clone(),
                Entry::Dir {
                    path: relative,
                    meta,
                },
            );
            walk(root, &path, out)?;
            continue;
        } else if kind.is_symlink() {
            let target = fs::read_link(&path).map_err(error)?;
            Entry::Symlink {
                path: relative.clone(),
                meta,
                target: target.to_string_lossy().into_owned(),
            }
        } else if kind.is_file() {
            Entry::File {
                path: relative.clone(),
                meta,
                data: fs::read(&path).map_err(error)?,
            }
        } else if kind.is_char_device() {
            let rdev = m.rdev();
            let (major, minor) = (libc::major(rdev), libc::minor(rdev));
            Entry::CharDevice {
                path: relative.clone(),
                meta,
                major,
                minor,
            }
        } else {
            continue; // sockets, fifos, block devices: nothing a guest needs from an image
        };
        out.insert(relative, entry);
    }
    Ok(())
}

/// The ustar subset that image exporters write: files, directories,
/// symlinks, hard links (stored as copies), GNU long names.
fn read_tar(
    path: &Path,
    bytes: &[u8],
    out: &mut BTreeMap<String, Entry>,
) -> Result<(), RootfsError> {
    let bad = |reason: &str| RootfsError::BadTar {
        path: path.into(),
        reason: reason.into(),
    };
    let field = |h: &[u8], start: usize, len: usize| -> String {
        let raw = &h[start..start + len];
        let end = raw.iter().position(|&b| b == 0).unwrap_or(len);
        String::from_utf8_lossy(&raw[..end]).into_owned()
    };
    let octal = |h: &[u8], start: usize, len: usize| -> Result<u64, RootfsError> {
        let text = field(h, start, len);
        let text = text.trim_matches(|c: char| c == ' ' || c == '\0');
        if text.is_empty() {
            return Ok(0);
        }
        u64::from_str_radix(text, 8).map_err(|_| bad("a header number is not octal"))
    };
    let mut offset = 0;
    let mut long_name: Option<String> = None;
    while offset + 512 <= bytes.len() {
        let h = &bytes[offset..offset + 512];
        if h.iter().all(|&b| b == 0) {
            break;
        }
        let size = octal(h, 124, 12)? as usize;
        let data_start = offset + 512;
        let data = bytes
            .get(data_start..data_start + size)
            .ok_or_else(|| bad("a file runs past the end"))?;
        offset = data_start + size.div_ceil(512) * 512;
        let kind = h[156];
        if kind == b'L' {
            long_name = Some(
                String::from_utf8_lossy(data)
                    .trim_end_matches('\0')
                    .to_string(),
            );
            continue;
        }
        let mut name = long_name.take().unwrap_or_else(|| {
            let prefix = field(h, 345, 155);
            let base = field(h, 0, 100);
            if prefix.is_empty() {
                base
            } else {
                format!("{prefix}/{base}")
            }
        });
        name = name
            .trim_start_matches("./")
            .trim_start_matches('/')
            .trim_end_matches('/')
            .to_string();
        if name.is_empty() || name == "." {
            continue;
        }
        let meta = Meta {
            mode: octal(h, 100, 8)? as u32 & 0o7777,
            uid: octal(h, 108, 8)? as u32,
            gid: octal(h, 116, 8)? as u32,
        };
        let entry = match kind {
            b'0' | 0 | b'7' => Entry::File {
                path: name.clone(),
                meta,
                data: data.to_vec(),
            },
            b'5' => Entry::Dir {
                path: name.clone(),
                meta,
            },
            b'2' => Entry::Symlink {
                path: name.clone(),
                meta,
                target: field(h, 157, 100),
            },
            b'1' => {
                let target = field(h, 157, 100).trim_start_matches("./").to_string();
                match out.get(&target) {
                    Some(Entry::File { data, .. }) => Entry::File {
                        path: name.clone(),
                        meta,
                        data: data.clone(),
                    },
                    _ => {
                        return Err(bad(&format!(
                            "hard link {name} points at a missing {target}"
                        )))
                    }
                }
            }
            b'3' => {
                let (major, minor) = (octal(h, 329, 8)? as u32, octal(h, 337, 8)? as u32);
                Entry::CharDevice {
                    path: name.clone(),
                    meta,
                    major,
                    minor,
                }
            }
            _ => continue, // fifos, block devices, pax headers
        };
        out.insert(name, entry);
    }
    Ok(())
}
