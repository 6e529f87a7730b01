//! The guest's root file system for a recipe's `image`. `{ busybox = true; }`
//! is assembled here from the host's static busybox: a shell, the usual
//! applets, `/etc/passwd` with root and the agent's user, and their homes.
//! Images bottle builds (dir, debian, OCI) are root disks from the store;
//! an OCI reference by tag that no `bottle.lock` pinned is refused.
use std::path::{Path, PathBuf};

/// Where a static busybox lives on Debian (`busybox-static`).
const BUSYBOX: &[&str] = &["/bin/busybox", "/usr/bin/busybox"];

/// Applets the guest gets as links; enough for scripts and the tests.
const APPLETS: &[&str] = &[
    "sh", "ash", "cat", "echo", "ls", "mkdir", "rm", "cp", "mv", "ln", "head", "tail", "grep",
    "sed", "awk", "wget", "nslookup", "nc", "env", "id", "true", "false", "sleep", "test", "[",
    "printf", "uname", "hostname", "ps", "kill", "mount", "ip", "ifconfig", "vi", "tr", "wc",
    "sort", "uniq", "cut", "date", "find", "xargs", "chmod", "chown", "touch", "pwd", "whoami",
    "tee", "dirname", "basename", "expr", "seq", "timeout",
];

#[derive(Debug, thiserror::Error, miette::Diagnostic)]
pub enum ImageError {
    #[error("no static busybox on this host")]
    #[diagnostic(help("install it with `apt-get install busybox-static` (scripts/setup does)"))]
    NoBusybox,
    #[error("`{reference}` is not pinned by digest, so bottle does not pull it")]
    #[diagnostic(help(
        "build the recipe with this version of bottle (it pins the tag in bottle.lock), or pin it as `NAME:TAG@sha256:…`"
    ))]
    Oci { reference: String },
    #[error("the manifest's image {image} is not one bottle knows")]
    #[diagnostic(help("rebuild the bottle with this version of bottle"))]
    Unknown { image: String },
    #[error("cannot assemble the busybox root file system in {path}: {source}")]
    #[diagnostic(help("check that the temporary directory is writable"))]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Copy the bottle's guest files (guest path → store name) from `store`
/// into an assembled root at `root`.
pub fn place_files(
    root: &Path,
    store: &Path,
    files: &std::collections::BTreeMap<String, String>,
) -> Result<(), ImageError> {
    for (guest, name) in files {
        let target = root.join(guest.trim_start_matches('/'));
        let write_err = |source| ImageError::Write {
            path: target.clone(),
            source,
        };
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(write_err)?;
        }
        let status = std::process::Command::new("cp")
            .args(["-R", "--no-preserve=mode,ownership", "--"])
            .arg(store.join(name))
            .arg(&target)
            .status()
            .map_err(write_err)?;
        if !status.success() {
            return Err(write_err(std::io::Error::other(format!(
                "cp exited with {status}"
            ))));
        }
    }
    Ok(())
}

/// Assemble a busybox root file system in `root` for an agent running as `user`.
pub fn busybox_rootfs(root: &Path, user: &str) -> Result<(), ImageError> {
    let busybox = BUSYBOX
        .iter()
        .map(Path::new)
        .find(|p| p.is_file())
        .ok_or(ImageError::NoBusybox)?;
    let write_err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ImageError::Write { path, source }
    };
    let home = if user == "root" {
        "/root".to_string()
    } else {
        format!("/home/{user}")
    };
    for dir in ["bin", "etc", "tmp", "root", "work", "proc", "sys", "dev"]
        .iter()
        .map(|d| root.join(d))
    {
        std::fs::create_dir_all(&dir).map_err(write_err(&dir))?;
    }
    // Sane modes whatever the umask: `/` 0755, `/tmp` 1777 (the boot image
    // and the init enforce the same, see `guest::layout`).
    for (dir, mode) in [(root.to_path_buf(), 0o755), (root.join("tmp"), 0o1777)] {
        std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(mode))
            .map_err(write_err(&dir))?;
    }
    let home_dir = root.join(home.trim_start_matches('/'));
    std::fs::create_dir_all(&home_dir).map_err(write_err(&home_dir))?;
    let target = root.join("bin/busybox");
    std::fs::copy(busybox, &target).map_err(write_err(&target))?;
    for applet in APPLETS {
        let link = root.join("bin").join(applet);
        std::os::unix::fs::symlink("busybox", &link).map_err(write_err(&link))?;
    }
    let mut passwd = String::from("root:x:0:0:root:/root:/bin/sh\n");
    let mut group = String::from("root:x:0:\n");
    if user != "root" {
        passwd.push_str(&format!("{user}:x:1000:1000:{user}:{home}:/bin/sh\n"));
        group.push_str(&format!("{user}:x:1000:\n"));
        // The agent owns its home and the default working directory.
        for dir in [home_dir, root.join("work")] {
            std::os::unix::fs::chown(&dir, Some(1000), Some(1000)).map_err(write_err(&dir))?;
        }
    }
    for (name, text) in [("etc/passwd", passwd), ("etc/group", group)] {
        let path = root.join(name);
        std::fs::write(&path, text).map_err(write_err(&path))?;
    }
    Ok(())
}
