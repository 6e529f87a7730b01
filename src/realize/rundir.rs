//! Run directories: one per running bottle under the runs root, holding its
//! record (`run.json`: the `bottle` process and its parts), sockets, logs and
//! boot image. `bottle ps` lists them, `bottle stop` ends one, and every start
//! first removes the runs whose `bottle` is gone (killed with SIGKILL, say).
//!
//! The runs root is `$BOTTLE_RUNTIME_DIR`, else `/run/bottle` for root, else
//! `$XDG_RUNTIME_DIR/bottle`, else `/tmp/bottle-<uid>`.
use miette::Diagnostic;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use thiserror::Error;

/// Errors managing run directories.
#[derive(Debug, Error, Diagnostic)]
pub enum RunDirError {
    #[error("a bottle named `{name}` is already running (pid {pid})")]
    #[diagnostic(help("stop it with `bottle stop {name}`, or pick another name with --name"))]
    Running { name: String, pid: u32 },
    #[error("no run named `{name}`")]
    #[diagnostic(help("`bottle ps` lists the runs"))]
    NoSuchRun { name: String },
    #[error("cannot use the run directory {path}: {source}")]
    #[diagnostic(help("set BOTTLE_RUNTIME_DIR to a writable directory"))]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the run `{name}` did not stop within {seconds} s")]
    #[diagnostic(help(
        "its bottle process is {pid}; `kill -9 {pid}` ends it and the next start cleans up"
    ))]
    StopTimeout {
        name: String,
        pid: u32,
        seconds: u64,
    },
}

/// A process, named by pid and start time so a reused pid is never mistaken for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessId {
    pub pid: u32,
    pub start: u64,
}

impl ProcessId {
    pub fn of(pid: u32) -> Option<ProcessId> {
        start_time(pid).map(|start| ProcessId { pid, start })
    }

    /// Is this process still the one recorded?
    pub fn alive(&self) -> bool {
        start_time(self.pid) == Some(self.start)
    }
}

/// `run.json`: who runs this bottle and with which parts.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunRecord {
    pub name: String,
    pub bottle: ProcessId,
    /// Seconds since the epoch.
    pub started: u64,
    pub command: Vec<String>,
    pub parts: Vec<(String, ProcessId)>,
}

/// The run directory of this process's run; removed by [`RunDir::remove`].
#[derive(Debug)]
pub struct RunDir {
    pub path: PathBuf,
    pub record: RunRecord,
    /// When the run began (the clock of the `ready` lines in its log).
    pub started: std::time::Instant,
}

pub fn runs_root() -> PathBuf {
    if let Some(dir) = std::env::var_os("BOTTLE_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let uid = nix::unistd::geteuid();
    if uid.is_root() {
        return PathBuf::from("/run/bottle");
    }
    match std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        Some(dir) => PathBuf::from(dir).join("bottle"),
        None => PathBuf::from(format!("/tmp/bottle-{uid}")),
    }
}

impl RunDir {
    /// Create the run directory for `name`, after cleaning stale runs.
    pub fn create(name: &str, command: &[String]) -> Result<RunDir, RunDirError> {
        let root = runs_root();
        clean_stale(&root);
        let path = root.join(name);
        let io = |source| RunDirError::Io {
            path: path.clone(),
            source,
        };
        if let Some(record) = read_record(&path) {
            return Err(RunDirError::Running {
                name: name.into(),
                pid: record.bottle.pid,
            });
        }
        let _ = std::fs::remove_dir_all(&path); // a half-made directory without a record
        std::fs::create_dir_all(&root).map_err(io)?;
        std::fs::create_dir(&path).map_err(io)?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o700)).map_err(io)?;
        let record = RunRecord {
            name: name.into(),
            bottle: ProcessId::of(std::process::id()).expect("this process has a /proc entry"),
            started: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            command: command.to_vec(),
            parts: vec![],
        };
        let dir = RunDir {
            path,
            record,
            started: std::time::Instant::now(),
        };
        dir.save()?;
        Ok(dir)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Record a started part, so a later `bottle` can end it if this one dies.
    pub fn add_part(&mut self, name: &str, pid: u32) -> Result<(), RunDirError> {
        if let Some(id) = ProcessId::of(pid) {
            self.record.parts.push((name.into(), id));
        }
        self.save()
    }

    fn save(&self) -> Result<(), RunDirError> {
        let io = |source| RunDirError::Io {
            path: self.path.clone(),
            source,
        };
        let text =
            serde_json::to_string_pretty(&self.record).expect("a run record always serializes");
        let temporary = self.path.join(".run.json.tmp");
        std::fs::write(&temporary, text).map_err(io)?;
        std::fs::rename(&temporary, self.path.join("run.json")).map_err(io)
    }

    /// Remove the directory with its sockets and logs.
    pub fn remove(self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

fn read_record(path: &Path) -> Option<RunRecord> {
    let text = std::fs::read_to_string(path.join("run.json")).ok()?;
    serde_json::from_str(&text).ok()
}

/// A run as `bottle ps` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    pub name: String,
    pub pid: u32,
    pub started: u64,
    pub command: Vec<String>,
    pub path: PathBuf,
}

/// The live runs, by name.
pub fn list() -> Vec<RunSummary> {
    let root = runs_root();
    clean_stale(&root);
    let mut runs: Vec<RunSummary> = std::fs::read_dir(&root)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let record = read_record(&e.path())?;
            Some(RunSummary {
                name: record.name,
                pid: record.bottle.pid,
                started: record.started,
                command: record.command,
                path: e.path(),
            })
        })
        .collect();
    runs.sort_by(|a, b| a.name.cmp(&b.name));
    runs
}

/// Remove every run under `root` whose `bottle` process is gone, ending any
/// part it left (parts normally die with it: they get SIGKILL when it dies).
pub fn clean_stale(root: &Path) -> Vec<String> {
    let mut cleaned = Vec::new();
    for entry in std::fs::read_dir(root).into_iter().flatten().flatten() {
        let path = entry.path();
        let Some(record) = read_record(&path) else {
            // No record: a directory whose creator died before writing one,
            // or not ours. Only remove it if it is old enough not to be in the making.
            let old = entry
                .metadata()
                .and_then(|m| m.modified())
                .map(|t| t.elapsed().unwrap_or_default() > Duration::from_secs(60))
                .unwrap_or(false);
            if old && path.is_dir() {
                let _ = std::fs::remove_dir_all(&path);
            }
            continue;
        };
        if record.bottle.alive() {
            continue;
        }
        for (_, part) in &record.parts {
            if part.alive() {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(part.pid as i32),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
        let _ = std::fs::remove_dir_all(&path);
        cleaned.push(record.name);
    }
    cleaned
}

/// Ask the run `name` to stop (SIGTERM to its `bottle`) and wait until its
/// directory is gone.
pub fn stop(name: &str, timeout: Duration) -> Result<(), RunDirError> {
    let root = runs_root();
    clean_stale(&root);
    let path = root.join(name);
    let record = read_record(&path).ok_or_else(|| RunDirError::NoSuchRun { name: name.into() })?;
    let pid = nix::unistd::Pid::from_raw(record.bottle.pid as i32);
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if !path.exists() || !record.bottle.alive() {
            clean_stale(&root);
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Err(RunDirError::StopTimeout {
        name: name.into(),
        pid: record.bottle.pid,
        seconds: timeout.as_secs(),
    })
}

/// The start time of a process in clock ticks since boot (field 22 of /proc/PID/stat).
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces; fields resume after its ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let state = rest.split(' ').next()?;
    if state == "Z" || state == "X" {
        return None;
    }
    rest.split(' ').nth(19)?.parse().ok()
}
