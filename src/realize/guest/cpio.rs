//! A writer for the cpio "newc" format, the one the Linux kernel unpacks as an
//! initramfs. Only what an initramfs needs: directories, regular files and
//! symlinks, with the metadata the caller gives (no clock, no host uids), so
//! the same entries always give the same bytes.

/// One archive entry. Paths are relative, without a leading `/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    Dir {
        path: String,
        meta: Meta,
    },
    File {
        path: String,
        meta: Meta,
        data: Vec<u8>,
    },
    Symlink {
        path: String,
        meta: Meta,
        target: String,
    },
    /// A character device node, e.g. `dev/console` for the kernel's first open.
    CharDevice {
        path: String,
        meta: Meta,
        major: u32,
        minor: u32,
    },
}

/// Permission bits and owner of an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Meta {
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
}

impl Meta {
    /// Owned by root with the given permission bits.
    pub fn root(mode: u32) -> Meta {
        Meta {
            mode,
            uid: 0,
            gid: 0,
        }
    }
}

impl Entry {
    pub fn path(&self) -> &str {
        match self {
            Entry::Dir { path, .. }
            | Entry::File { path, .. }
            | Entry::Symlink { path, .. }
            | Entry::CharDevice { path, .. } => path,
        }
    }
}

const S_IFDIR: u32 = 0o040000;
const S_IFREG: u32 = 0o100000;
const S_IFLNK: u32 = 0o120000;
const S_IFCHR: u32 = 0o020000;

/// Write `entries` in the order given, then the trailer. Owners are root,
/// mtimes 0, inode numbers count up from 1: nothing depends on the host.
pub fn write(entries: &[Entry]) -> Vec<u8> {
    let mut out = Vec::new();
    for (index, entry) in entries.iter().enumerate() {
        let inode = index as u32 + 1;
        let h = |kind: u32, meta: &Meta, nlink: u32, rdev: (u32, u32)| Header {
            inode,
            mode: kind | (meta.mode & 0o7777),
            uid: meta.uid,
            gid: meta.gid,
            nlink,
            rdev,
        };
        match entry {
            Entry::Dir { path, meta } => h(S_IFDIR, meta, 2, (0, 0)).write(&mut out, path, b""),
            Entry::File { path, meta, data } => {
                h(S_IFREG, meta, 1, (0, 0)).write(&mut out, path, data)
            }
            Entry::Symlink { path, meta, target } => {
                let meta = Meta {
                    mode: 0o777,
                    ..*meta
                };
                h(S_IFLNK, &meta, 1, (0, 0)).write(&mut out, path, target.as_bytes())
            }
            Entry::CharDevice {
                path,
                meta,
                major,
                minor,
            } => h(S_IFCHR, meta, 1, (*major, *minor)).write(&mut out, path, b""),
        }
    }
    let trailer = Header {
        inode: 0,
        mode: 0,
        uid: 0,
        gid: 0,
        nlink: 1,
        rdev: (0, 0),
    };
    trailer.write(&mut out, "TRAILER!!!", b"");
    out
}

struct Header {
    inode: u32,
    mode: u32,
    uid: u32,
    gid: u32,
    nlink: u32,
    rdev: (u32, u32),
}

impl Header {
    fn write(&self, out: &mut Vec<u8>, name: &str, data: &[u8]) {
        let fields = [
            self.inode,
            self.mode,
            self.uid,
            self.gid,
            self.nlink,
            0, // mtime: fixed, so the archive depends on content only
            data.len() as u32,
            0, // devmajor
            0, // devminor
            self.rdev.0,
            self.rdev.1,
            name.len() as u32 + 1,
            0, // check (unused by newc)
        ];
        out.extend_from_slice(b"070701");
        for field in fields {
            out.extend_from_slice(format!("{field:08X}").as_bytes());
        }
        out.extend_from_slice(name.as_bytes());
        out.push(0);
        pad4(out);
        out.extend_from_slice(data);
        pad4(out);
    }
}

fn pad4(out: &mut Vec<u8>) {
    while !out.len().is_multiple_of(4) {
        out.push(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_archive_is_only_the_trailer() {
        let bytes = write(&[]);
        assert!(bytes.starts_with(b"070701"));
        assert_eq!(bytes.len() % 4, 0);
        assert!(bytes.windows(10).any(|w| w == b"TRAILER!!!"));
    }

    #[test]
    fn file_header_carries_size_and_mode() {
        let bytes = write(&[Entry::File {
            path: "init".into(),
            meta: Meta::root(0o755),
            data: b"abc".to_vec(),
        }]);
        let header = std::str::from_utf8(&bytes[..110]).unwrap();
        assert_eq!(&header[14..22], "000081ED"); // regular file, 0755
        assert_eq!(&header[54..62], "00000003"); // size
        assert_eq!(&bytes[110..115], b"init\0");
        assert_eq!(&bytes[116..119], b"abc");
    }
}
