//! The owners and modes every guest root gets, whatever the image source:
//! `/` is root's and 0755, the trees root runs programs from are root's and
//! writable by no one else, `/tmp` is 1777. An unprivileged agent then cannot
//! plant a program where the kernel or the init would run it as root (the
//! issue that started this: a 1777 `/` let the agent create
//! `/sbin/modprobe`).
//!
//! Applied twice: to the boot image's entries on the host
//! (`initramfs::build`, recursively, so a rootfs unpacked by a non-root user
//! with that user's uid comes out root's), and at boot by the init to the
//! directories themselves (not their contents, to stay fast on big images),
//! so a root from any other source gets the same rule.
//!
//! Compiled into `bottle` and into the static init, so it uses `std` only.

/// Trees whose every entry is root's and not writable by group or others.
pub const SYSTEM_TREES: &[&str] = &[
    "bin", "sbin", "lib", "lib32", "lib64", "libx32", "usr", "etc", "boot",
];

/// Directories that are root's and not writable by group or others; their
/// contents keep the image's owners (`/home/agent`, `/var/lib/postgresql`).
pub const SYSTEM_DIRS: &[&str] = &[
    "",
    "bin",
    "sbin",
    "lib",
    "lib32",
    "lib64",
    "libx32",
    "usr",
    "usr/bin",
    "usr/sbin",
    "usr/lib",
    "usr/lib32",
    "usr/lib64",
    "usr/libx32",
    "usr/libexec",
    "usr/share",
    "usr/local",
    "usr/local/bin",
    "usr/local/sbin",
    "usr/local/lib",
    "etc",
    "boot",
    "var",
    "var/lib",
    "opt",
    "srv",
    "home",
    "mnt",
    "media",
    "root",
];

/// World-writable scratch directories: root's, mode 1777.
pub const STICKY_DIRS: &[&str] = &["tmp", "var/tmp"];

/// The mode a system entry gets: the image's, without write for group and others.
pub fn system_mode(mode: u32) -> u32 {
    mode & !0o022
}

/// Whether `path` (relative, no leading `/`) is the agent's own: its home
/// or its working directory, or inside one. These keep their owners.
pub fn is_agents(path: &str, own: &[&str]) -> bool {
    own.iter()
        .map(|dir| dir.trim_matches('/'))
        .filter(|dir| !dir.is_empty())
        .any(|dir| {
            path == dir
                || path
                    .strip_prefix(dir)
                    .is_some_and(|rest| rest.starts_with('/'))
        })
}

/// Whether `path` is in one of the [`SYSTEM_TREES`].
pub fn in_system_tree(path: &str) -> bool {
    let top = path.split('/').next().unwrap_or("");
    SYSTEM_TREES.contains(&top)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_agents_directories_are_its_own_and_nothing_else() {
        let own = ["/home/agent", "/usr/src/app/", "/"];
        assert!(is_agents("home/agent", &own));
        assert!(is_agents("home/agent/.cache", &own));
        assert!(is_agents("usr/src/app/x", &own));
        assert!(!is_agents("home/agentx", &own));
        assert!(!is_agents("home", &own));
        assert!(!is_agents("bin", &own), "a home of `/` owns nothing");
        assert!(in_system_tree("usr/lib/x.so"));
        assert!(!in_system_tree("usrx/lib"));
        assert!(!in_system_tree("home/agent"));
    }
}
