//! The guest's boot image: one cpio archive holding the rootfs, bottle's init
//! at `/init`, the kernel modules it loads and the guest spec. A pure function
//! of those inputs (sorted entries, fixed metadata), so it can be stored under
//! its content hash. The run's status token is not part of it: it is appended
//! per run as a second archive ([`append_token`]), which the kernel unpacks
//! over the first.
//!
//! Owners and modes follow `layout`: `/` is root's 0755, the system trees are
//! root's and writable by no one else, `/tmp` is 1777, whatever the rootfs says.
use super::cpio::{self, Entry, Meta};
use super::layout;
use super::spec::GuestSpec;
use super::status::TOKEN_FILE;
use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

/// Everything the boot image is made of.
pub struct BootImage<'a> {
    /// The rootfs entries (see `rootfs::read`).
    pub rootfs: Vec<Entry>,
    /// The static init binary.
    pub init: &'a [u8],
    /// Kernel modules as `(file name, bytes)`, loaded in rounds by the init.
    pub modules: Vec<(String, Vec<u8>)>,
    pub spec: &'a GuestSpec,
}

/// The archive bytes. bottle's own entries replace rootfs entries of the
/// same path; every parent directory is present before its children.
pub fn build(image: BootImage<'_>) -> Vec<u8> {
    let mut entries: BTreeMap<String, Entry> = BTreeMap::new();
    for entry in image.rootfs {
        entries.insert(entry.path().to_string(), entry);
    }
    normalize(&mut entries, image.spec);
    let mut own = vec![
        // The archive's "." sets the mode of the kernel's rootfs, a tmpfs
        // that is 1777 otherwise.
        Entry::Dir {
            path: ".".into(),
            meta: Meta::root(0o755),
        },
        Entry::Dir {
            path: ".bottle".into(),
            meta: Meta::root(0o700),
        },
        Entry::Dir {
            path: ".bottle/modules".into(),
            meta: Meta::root(0o700),
        },
        Entry::File {
            path: ".bottle/spec".into(),
            meta: Meta::root(0o600),
            data: image.spec.encode().into_bytes(),
        },
        Entry::File {
            path: "init".into(),
            meta: Meta::root(0o755),
            data: image.init.to_vec(),
        },
        // The kernel opens /dev/console for PID 1 before any devtmpfs exists.
        Entry::CharDevice {
            path: "dev/console".into(),
            meta: Meta::root(0o600),
            major: 5,
            minor: 1,
        },
    ];
    for (name, data) in image.modules {
        own.push(Entry::File {
            path: format!(".bottle/modules/{name}"),
            meta: Meta::root(0o600),
            data,
        });
    }
    for entry in own {
        entries.insert(entry.path().to_string(), entry);
    }
    // Parents of every entry must exist before it; add the missing ones.
    let parents: Vec<String> = entries
        .keys()
        .flat_map(|path| {
            let mut parents = Vec::new();
            let mut rest = path.as_str();
            while let Some((parent, _)) = rest.rsplit_once('/') {
                parents.push(parent.to_string());
                rest = parent;
            }
            parents
        })
        .collect();
    for parent in parents {
        entries.entry(parent.clone()).or_insert(Entry::Dir {
            path: parent,
            meta: Meta::root(0o755),
        });
    }
    let ordered: Vec<Entry> = entries.into_values().collect();
    cpio::write(&ordered)
}

/// Apply `layout`'s rule to the rootfs entries: system trees are root's and
/// writable only by root, system directories too, scratch directories 1777;
/// the agent's home and working directory keep their owners.
fn normalize(entries: &mut BTreeMap<String, Entry>, spec: &GuestSpec) {
    let home = agents_home(entries, &spec.user);
    let own = [home.as_str(), spec.workdir.as_str()];
    for (path, entry) in entries.iter_mut() {
        let is_dir = matches!(entry, Entry::Dir { .. });
        let meta = match entry {
            Entry::Dir { meta, .. } | Entry::File { meta, .. } | Entry::CharDevice { meta, .. } => {
                meta
            }
            // A symlink's own owner and mode mean nothing to the kernel.
            Entry::Symlink { .. } => continue,
        };
        if layout::STICKY_DIRS.contains(&path.as_str()) && is_dir {
            *meta = Meta::root(0o1777);
        } else if layout::is_agents(path, &own) {
            continue;
        } else if layout::in_system_tree(path)
            || (is_dir && layout::SYSTEM_DIRS.contains(&path.as_str()))
        {
            if meta.uid != 0 {
                // Unpacked by a non-root user: the uids are that user's, not the image's.
                meta.uid = 0;
                meta.gid = 0;
            }
            meta.mode = layout::system_mode(meta.mode);
        }
    }
}

/// The agent's home from the rootfs's `/etc/passwd` (empty if not found).
fn agents_home(entries: &BTreeMap<String, Entry>, user: &str) -> String {
    let Some(Entry::File { data, .. }) = entries.get("etc/passwd") else {
        return String::new();
    };
    let passwd = String::from_utf8_lossy(data);
    let user = if user.is_empty() { "root" } else { user };
    let uid = user.split(':').next().unwrap_or(user);
    passwd
        .lines()
        .map(|line| line.split(':').collect::<Vec<_>>())
        .find(|f| f.len() >= 6 && (f[0] == user || f[2] == uid))
        .map(|f| f[5].to_string())
        .unwrap_or_default()
}

/// Append this run's status token to the boot image at `path`, as a second
/// cpio archive holding `/.bottle/token` (root-only). The kernel unpacks
/// concatenated archives, compressed or not, each starting 4-byte aligned.
pub fn append_token(path: &Path, token: &str) -> std::io::Result<()> {
    let length = std::fs::metadata(path)?.len();
    let mut file = std::fs::OpenOptions::new().append(true).open(path)?;
    let padding = (4 - length % 4) % 4;
    file.write_all(&vec![0u8; padding as usize])?;
    file.write_all(&token_archive(token))?;
    file.sync_data()
}

fn token_archive(token: &str) -> Vec<u8> {
    cpio::write(&[
        Entry::Dir {
            path: ".bottle".into(),
            meta: Meta::root(0o700),
        },
        Entry::File {
            path: TOKEN_FILE.into(),
            meta: Meta::root(0o400),
            data: token.as_bytes().to_vec(),
        },
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> GuestSpec {
        GuestSpec {
            command: vec!["true".into()],
            ..GuestSpec::default()
        }
    }

    #[test]
    fn same_inputs_same_bytes_whatever_the_order() {
        let s = spec();
        let a = build(BootImage {
            rootfs: vec![
                Entry::File {
                    path: "bin/sh".into(),
                    meta: Meta::root(0o755),
                    data: b"x".to_vec(),
                },
                Entry::Dir {
                    path: "bin".into(),
                    meta: Meta::root(0o755),
                },
            ],
            init: b"init",
            modules: vec![("a.ko".into(), b"a".to_vec())],
            spec: &s,
        });
        let b = build(BootImage {
            rootfs: vec![
                Entry::Dir {
                    path: "bin".into(),
                    meta: Meta::root(0o755),
                },
                Entry::File {
                    path: "bin/sh".into(),
                    meta: Meta::root(0o755),
                    data: b"x".to_vec(),
                },
            ],
            init: b"init",
            modules: vec![("a.ko".into(), b"a".to_vec())],
            spec: &s,
        });
        assert_eq!(a, b);
    }

    #[test]
    fn parents_come_before_children_and_bottle_init_wins() {
        let s = spec();
        let bytes = build(BootImage {
            rootfs: vec![Entry::File {
                path: "init".into(),
                meta: Meta::root(0o755),
                data: b"theirs".to_vec(),
            }],
            init: b"ours",
            modules: vec![],
            spec: &s,
        });
        let text = String::from_utf8_lossy(&bytes);
        assert!(!text.contains("theirs"));
        let dev = text.find("dev\0").expect("dev directory added");
        let console = text.find("dev/console\0").expect("console node");
        assert!(dev < console);
    }

    fn meta_of(bytes: &[u8], name: &str) -> (u32, u32) {
        // newc header: magic, ino, mode, uid, … then the name.
        let text = String::from_utf8_lossy(bytes);
        let at = text.find(&format!("{name}\0")).expect("entry present");
        let header = &text[at - 110..at];
        let field = |i: usize| u32::from_str_radix(&header[6 + 8 * i..14 + 8 * i], 16).unwrap();
        (field(1) & 0o7777, field(2))
    }

    #[test]
    fn system_trees_are_roots_and_the_agents_home_is_its_own() {
        let user = |path: &str, mode| Entry::Dir {
            path: path.into(),
            meta: Meta {
                mode,
                uid: 1000,
                gid: 1000,
            },
        };
        let s = GuestSpec {
            user: "agent".into(),
            workdir: "/work".into(),
            ..spec()
        };
        let bytes = build(BootImage {
            rootfs: vec![
                user("bin", 0o777),
                user("usr", 0o775),
                user("usr/sbin", 0o777),
                user("tmp", 0o755),
                user("home", 0o777),
                user("home/agent", 0o700),
                user("work", 0o755),
                Entry::File {
                    path: "etc/passwd".into(),
                    meta: Meta::root(0o666),
                    data: b"agent:x:1000:1000::/home/agent:/bin/sh\n".to_vec(),
                },
            ],
            init: b"init",
            modules: vec![],
            spec: &s,
        });
        assert_eq!(meta_of(&bytes, "."), (0o755, 0));
        assert_eq!(meta_of(&bytes, "bin"), (0o755, 0));
        assert_eq!(meta_of(&bytes, "usr/sbin"), (0o755, 0));
        assert_eq!(meta_of(&bytes, "home"), (0o755, 0));
        assert_eq!(meta_of(&bytes, "etc/passwd"), (0o644, 0));
        assert_eq!(meta_of(&bytes, "tmp"), (0o1777, 0));
        assert_eq!(meta_of(&bytes, "home/agent"), (0o700, 1000));
        assert_eq!(meta_of(&bytes, "work"), (0o755, 1000));
    }

    #[test]
    fn the_token_is_a_second_aligned_archive() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("boot.cpio");
        std::fs::write(&path, b"12345").unwrap();
        append_token(&path, "abc").unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(&bytes[5..8], b"\0\0\0");
        assert!(bytes[8..].starts_with(b"070701"));
        assert_eq!(meta_of(&bytes, TOKEN_FILE), (0o400, 0));
    }
}
