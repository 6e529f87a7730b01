//! The one place that starts and reaps child processes (gvproxy, qemu, and
//! the short-lived probes `bottle doctor` runs). Every child gets SIGKILL
//! when `bottle` dies (PR_SET_PDEATHSIG), so even a `kill -9` of `bottle`
//! leaves no part running; stopping is SIGTERM, a grace period, then SIGKILL,
//! and every child is reaped.
use std::io;
use std::path::Path;
use std::process::ExitStatus;
use std::time::Duration;
use tokio::process::{Child, Command};

/// A running child process with a name for messages and its log file.
pub struct Part {
    pub name: String,
    pub log: Option<std::path::PathBuf>,
    child: Child,
    pid: u32,
    status: Option<ExitStatus>,
}

/// The children of one run.
#[derive(Default)]
pub struct Parts {
    parts: Vec<Part>,
}

/// Arrange for `command`'s process to be killed when this process dies.
/// The pre-exec hook runs between fork and exec: it only makes syscalls.
fn die_with_parent(command: &mut Command) {
    let parent = std::process::id() as i32;
    // SAFETY: the hook runs between fork and exec and makes only
    // async-signal-safe syscalls (prctl, getppid), allocating nothing.
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(io::Error::last_os_error());
            }
            // The parent may have died between fork and prctl.
            if libc::getppid() != parent {
                return Err(io::Error::from_raw_os_error(libc::ESRCH));
            }
            Ok(())
        });
    }
}

impl Parts {
    /// Start `command` as the part `name`. Its stderr (and stdout, unless the
    /// caller set it) goes to `log`. Call from the thread that owns the run
    /// (the death signal follows the thread that forked).
    pub fn spawn(
        &mut self,
        name: &str,
        mut command: Command,
        log: Option<&Path>,
    ) -> io::Result<u32> {
        if let Some(log) = log {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(log)?;
            command.stderr(file);
        }
        command.kill_on_drop(true);
        die_with_parent(&mut command);
        let child = command.spawn()?;
        let pid = child.id().expect("a just-spawned child has a pid");
        self.parts.push(Part {
            name: name.into(),
            log: log.map(Path::to_path_buf),
            child,
            pid,
            status: None,
        });
        Ok(pid)
    }

    /// Wait until any part exits; its name and status. Pending forever if there are none.
    pub async fn wait_any(&mut self) -> (String, ExitStatus) {
        if self.parts.iter().all(|p| p.status.is_some()) {
            return std::future::pending().await;
        }
        let waits = self
            .parts
            .iter_mut()
            .enumerate()
            .filter(|(_, p)| p.status.is_none())
            .map(|(i, p)| Box::pin(async move { (i, p.child.wait().await) }));
        let (index, result) = first_of(waits).await;
        let status =
            result.unwrap_or_else(|_| std::os::unix::process::ExitStatusExt::from_raw(1 << 8));
        self.parts[index].status = Some(status);
        (self.parts[index].name.clone(), status)
    }

    /// Has `name` exited? Its status if so (reaps it if it just did).
    pub fn exited(&mut self, name: &str) -> Option<ExitStatus> {
        let part = self.parts.iter_mut().find(|p| p.name == name)?;
        if part.status.is_none() {
            part.status = part.child.try_wait().ok().flatten();
        }
        part.status
    }

    /// Wait for the part `name` to exit, up to `timeout`.
    pub async fn wait_for(&mut self, name: &str, timeout: Duration) -> Option<ExitStatus> {
        let part = self.parts.iter_mut().find(|p| p.name == name)?;
        if part.status.is_none() {
            part.status = tokio::time::timeout(timeout, part.child.wait())
                .await
                .ok()?
                .ok();
        }
        part.status
    }

    /// Take the stdin and stdout pipes of `name` (if they were piped).
    pub fn take_stdio(
        &mut self,
        name: &str,
    ) -> (
        Option<tokio::process::ChildStdin>,
        Option<tokio::process::ChildStdout>,
    ) {
        match self.parts.iter_mut().find(|p| p.name == name) {
            Some(part) => (part.child.stdin.take(), part.child.stdout.take()),
            None => (None, None),
        }
    }

    pub fn log_of(&self, name: &str) -> Option<&Path> {
        self.parts.iter().find(|p| p.name == name)?.log.as_deref()
    }

    /// Stop every part, last started first: SIGTERM, up to `grace`, then SIGKILL; reap all.
    pub async fn stop_all(&mut self, grace: Duration) {
        for part in self.parts.iter_mut().rev() {
            if part.status.is_some() {
                continue;
            }
            if let Ok(Some(status)) = part.child.try_wait() {
                part.status = Some(status);
                continue;
            }
            // SAFETY: kill has no memory effects; the child is not reaped
            // yet, so its pid cannot have been reused.
            unsafe { libc::kill(part.pid as i32, libc::SIGTERM) };
            match tokio::time::timeout(grace, part.child.wait()).await {
                Ok(result) => part.status = result.ok(),
                Err(_) => {
                    let _ = part.child.start_kill();
                    part.status = part.child.wait().await.ok();
                }
            }
        }
    }
}

/// The output of the first of several futures to finish (a small
/// `select_all`, rather than the `futures` crate for one call).
async fn first_of<F: std::future::Future>(
    futures: impl IntoIterator<Item = std::pin::Pin<Box<F>>>,
) -> F::Output {
    let mut futures: Vec<_> = futures.into_iter().collect();
    std::future::poll_fn(move |cx| {
        for f in futures.iter_mut() {
            if let std::task::Poll::Ready(v) = f.as_mut().poll(cx) {
                return std::task::Poll::Ready(v);
            }
        }
        std::task::Poll::Pending
    })
    .await
}

/// Run a short command to completion with a time limit (probes, `--version`
/// queries); killed and reaped if it overruns. `None` on timeout.
pub async fn run_bounded(
    mut command: Command,
    timeout: Duration,
) -> io::Result<Option<std::process::Output>> {
    command
        .kill_on_drop(true)
        .stdin(std::process::Stdio::null());
    command
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    die_with_parent(&mut command);
    let child = command.spawn()?;
    match tokio::time::timeout(timeout, child.wait_with_output()).await {
        Ok(output) => output.map(Some),
        // Dropping the future drops the child: kill_on_drop kills it and
        // tokio reaps it in the background.
        Err(_) => Ok(None),
    }
}
