//! The one owner of a run's parts. Every part — a child process (gvproxy,
//! qemu) or a task in this process (a sidecar, a relay, the frame filter,
//! the terminal's copiers) — is registered here under a name and marked
//! critical or best-effort. The run ends at the first of: the VM powering
//! off, a critical part ending, a signal; the [`Ending`] names what it was,
//! and [`Supervisor::stop`] then stops every part. A best-effort part that
//! ends (the user's stdin closing, say) is only noted.
use super::parts::Parts;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::time::Duration;
use tokio::process::Command;
use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::task::JoinSet;

/// Whether a part's end ends the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Critical,
    BestEffort,
}

/// What ended a run.
#[derive(Debug)]
pub enum Ending {
    /// The VM powered off: the guest's status port says how the agent ended.
    PoweredOff,
    /// SIGINT, SIGTERM or SIGHUP (`bottle stop` sends SIGTERM).
    Signal(i32),
    /// A critical part ended first.
    PartEnded {
        part: String,
        reason: String,
        log: Option<PathBuf>,
    },
}

/// The signals that stop a run, handled in this one place.
pub struct Signals {
    interrupt: Signal,
    terminate: Signal,
    hangup: Signal,
}

impl Signals {
    pub fn install() -> std::io::Result<Signals> {
        Ok(Signals {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
            hangup: signal(SignalKind::hangup())?,
        })
    }

    /// The next signal's number.
    pub async fn next(&mut self) -> i32 {
        tokio::select! {
            _ = self.interrupt.recv() => libc::SIGINT,
            _ = self.terminate.recv() => libc::SIGTERM,
            _ = self.hangup.recv() => libc::SIGHUP,
        }
    }
}

struct TaskEnd {
    part: String,
    role: Role,
    result: Result<(), String>,
}

/// The parts of one run.
#[derive(Default)]
pub struct Supervisor {
    processes: Parts,
    tasks: JoinSet<TaskEnd>,
    /// Best-effort parts that ended, with why, for the run's log.
    pub noted: Vec<(String, String)>,
}

/// The process whose clean exit means the VM powered off.
pub const VMM: &str = "qemu";

impl Supervisor {
    /// Start a child process as the part `name` (always critical); its
    /// stderr goes to `log`. Call from the thread that owns the run.
    pub fn spawn(&mut self, name: &str, command: Command, log: &Path) -> std::io::Result<u32> {
        self.processes.spawn(name, command, Some(log))
    }

    /// Run `work` as the part `name`.
    pub fn task(
        &mut self,
        name: impl Into<String>,
        role: Role,
        work: impl Future<Output = Result<(), String>> + Send + 'static,
    ) {
        let part = name.into();
        self.tasks.spawn(async move {
            let result = work.await;
            TaskEnd { part, role, result }
        });
    }

    /// The child processes (their pipes, exits, logs).
    pub fn processes(&mut self) -> &mut Parts {
        &mut self.processes
    }

    /// Wait for what ends the run.
    pub async fn wait(&mut self, signals: &mut Signals) -> Ending {
        loop {
            tokio::select! {
                (part, status) = self.processes.wait_any() => return self.process_ended(part, status).await,
                Some(end) = self.tasks.join_next() => {
                    let (part, role, reason) = match end {
                        Ok(TaskEnd { part, role, result }) => {
                            (part, role, result.err().unwrap_or_else(|| "it stopped".into()))
                        }
                        Err(e) => ("a task".into(), Role::Critical, e.to_string()),
                    };
                    if role == Role::Critical {
                        return Ending::PartEnded { part, reason, log: None };
                    }
                    self.noted.push((part, reason));
                }
                signal = signals.next() => return Ending::Signal(signal),
            }
        }
    }

    async fn process_ended(&mut self, part: String, status: ExitStatus) -> Ending {
        // When the VM powers off, gvproxy sees its network close and exits
        // too, sometimes first: give the VMM a moment to be the reason.
        let vmm = if part == VMM {
            Some(status)
        } else {
            self.processes.wait_for(VMM, Duration::from_secs(2)).await
        };
        if vmm.is_some_and(|s| s.success()) {
            return Ending::PoweredOff;
        }
        Ending::PartEnded {
            log: self.processes.log_of(&part).map(Path::to_path_buf),
            reason: status.to_string(),
            part,
        }
    }

    /// Stop every part: processes last-started first (SIGTERM, a grace
    /// period, SIGKILL; all reaped), then the tasks.
    pub async fn stop(&mut self) {
        self.processes.stop_all(Duration::from_secs(2)).await;
        self.tasks.shutdown().await;
    }
}
