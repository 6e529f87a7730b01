//! The guest's boot image: one cpio archive holding the rootfs, bottle's init
//! at `/init`, the kernel modules it loads and the guest spec. A pure function
//! of those inputs (sorted entries, fixed metadata), so it can be stored under
//! its content hash.
use super::cpio::{self, Entry, Meta};
use super::spec::GuestSpec;
use std::collections::BTreeMap;

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
    let mut own = vec![
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
}
