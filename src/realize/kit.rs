//! The host programs and files a run needs — qemu, gvproxy, the guest kernel
//! and its modules — and where bottle finds them. `scripts/setup.d/` installs
//! them; `bottle doctor` reports on them.
//!
//! The kit directory is `$BOTTLE_KIT`, else `/var/lib/bottle/kit`; it holds
//! `gvproxy` and `kernel/{vmlinuz,modules/,version}`. gvproxy is also looked
//! up on `PATH` and in podman's libexec directories; qemu on `PATH`
//! (or `$BOTTLE_QEMU`).
use miette::Diagnostic;
use std::path::{Path, PathBuf};
use thiserror::Error;

/// The located parts of the kit.
#[derive(Debug, Clone)]
pub struct Kit {
    pub qemu: PathBuf,
    pub gvproxy: PathBuf,
    pub kernel: PathBuf,
    /// The kernel's module tree (`lib/modules/<version>` of its package).
    pub modules: PathBuf,
}

/// A missing piece of the kit.
#[derive(Debug, Error, Diagnostic)]
pub enum KitError {
    #[error("{what} not found (looked in: {looked})")]
    #[diagnostic(help("{fix}"))]
    Missing {
        what: &'static str,
        looked: String,
        fix: &'static str,
    },
    #[error("kernel module `{module}` is neither in {} nor built into the kernel", dir.display())]
    #[diagnostic(help(
        "reinstall the guest kernel: remove {kit}/kernel and run scripts/setup.d/20-guest-kernel"
    ))]
    Module {
        module: String,
        dir: PathBuf,
        kit: String,
    },
}

pub const FIX_QEMU: &str = "apt-get install qemu-system-x86 (or run scripts/setup)";
pub const FIX_GVPROXY: &str =
    "run scripts/setup.d/10-gvproxy (fetches Debian trixie's gvproxy into the kit)";
pub const FIX_KERNEL: &str =
    "run scripts/setup.d/20-guest-kernel (unpacks Debian's cloud kernel into the kit)";

/// The kit directory: `$BOTTLE_KIT`, else `/var/lib/bottle/kit`.
pub fn kit_dir() -> PathBuf {
    std::env::var_os("BOTTLE_KIT")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/lib/bottle/kit"))
}

impl Kit {
    /// Find every part, or say which is missing and how to install it.
    pub fn locate() -> Result<Kit, KitError> {
        Ok(Kit {
            qemu: find_qemu()?,
            gvproxy: find_gvproxy()?,
            kernel: find_kernel()?,
            modules: find_modules()?,
        })
    }

    /// The module files to put in the boot image, as `(file name, bytes)`,
    /// in the order of `names` (dependencies first), skipping modules built
    /// into the kernel.
    pub fn module_files(&self, names: &[&str]) -> Result<Vec<(String, Vec<u8>)>, KitError> {
        let builtin =
            std::fs::read_to_string(self.modules.join("modules.builtin")).unwrap_or_default();
        let mut files = Vec::new();
        let mut all = Vec::new();
        collect_modules(&self.modules.join("kernel"), &mut all);
        for name in names {
            let is = |path: &Path| {
                let file = path.file_name().and_then(|f| f.to_str()).unwrap_or("");
                let stem = file.split(".ko").next().unwrap_or("");
                stem.replace('-', "_") == *name
            };
            if builtin.lines().any(|l| is(Path::new(l))) {
                continue;
            }
            let path = all.iter().find(|p| is(p)).ok_or_else(|| KitError::Module {
                module: name.to_string(),
                dir: self.modules.clone(),
                kit: kit_dir().display().to_string(),
            })?;
            let bytes = std::fs::read(path).map_err(|_| KitError::Module {
                module: name.to_string(),
                dir: self.modules.clone(),
                kit: kit_dir().display().to_string(),
            })?;
            let file = path
                .file_name()
                .expect("module path has a file name")
                .to_string_lossy();
            // The init loads in name order: number the files so `names`'
            // (dependency) order is kept and no load fails for a missing symbol.
            files.push((format!("{:02}-{file}", files.len()), bytes));
        }
        Ok(files)
    }
}

fn collect_modules(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_modules(&path, out);
        } else if path.to_string_lossy().contains(".ko") {
            out.push(path);
        }
    }
    out.sort();
}

fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| is_executable(p))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

pub fn find_qemu() -> Result<PathBuf, KitError> {
    if let Some(p) = std::env::var_os("BOTTLE_QEMU").filter(|p| !p.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    on_path("qemu-system-x86_64").ok_or(KitError::Missing {
        what: "qemu-system-x86_64",
        looked: "$BOTTLE_QEMU, PATH".into(),
        fix: FIX_QEMU,
    })
}

pub fn find_gvproxy() -> Result<PathBuf, KitError> {
    let candidates = [
        kit_dir().join("gvproxy"),
        PathBuf::from("/usr/libexec/podman/gvproxy"),
        PathBuf::from("/usr/lib/podman/gvproxy"),
    ];
    candidates
        .iter()
        .find(|p| is_executable(p))
        .cloned()
        .or_else(|| on_path("gvproxy"))
        .ok_or_else(|| KitError::Missing {
            what: "gvproxy",
            looked: format!(
                "{}, /usr/libexec/podman, /usr/lib/podman, PATH",
                kit_dir().display()
            ),
            fix: FIX_GVPROXY,
        })
}

pub fn find_kernel() -> Result<PathBuf, KitError> {
    let path = kit_dir().join("kernel/vmlinuz");
    if path.is_file() {
        Ok(path)
    } else {
        Err(KitError::Missing {
            what: "the guest kernel",
            looked: path.display().to_string(),
            fix: FIX_KERNEL,
        })
    }
}

pub fn find_modules() -> Result<PathBuf, KitError> {
    let path = kit_dir().join("kernel/modules");
    if path.is_dir() {
        Ok(path)
    } else {
        Err(KitError::Missing {
            what: "the guest kernel's modules",
            looked: path.display().to_string(),
            fix: FIX_KERNEL,
        })
    }
}
