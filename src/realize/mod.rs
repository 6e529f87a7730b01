//! The realizer: from a built bottle's [`Plan`] to a running, contained VM
//! and back.
//!
//! `run` starts, in order and each only once the one before is ready: the
//! sidecars (on Unix sockets in the run directory), gvproxy (in a network
//! namespace of its own holding only `lo`, with bottle's relay listeners on
//! the sidecar ports), the frame filter between VM and gvproxy, and qemu —
//! each handed what [`launch::launch`] computes from the Plan, and each a
//! named part of the run's [`Supervisor`]. It joins the user's terminal to
//! the agent's, waits for the first of: the VM powering off, a critical part
//! ending, a signal (also `bottle stop`); then stops every part and removes
//! the run directory. The agent's exit code comes back from the guest's
//! status port.
pub mod firewall;
pub mod guest;
pub mod gvproxy;
pub mod image;
pub mod kit;
pub mod launch;
pub mod netns;
pub mod parts;
pub mod plan;
pub mod relay;
pub mod rundir;
pub mod sidecars;
pub mod supervisor;
pub mod terminal;
pub mod vmm;

pub use plan::{Plan, Sidecar, SidecarKind};

use launch::files;
use miette::Diagnostic;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use supervisor::{Ending, Role, Signals, Supervisor};
use thiserror::Error;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use vmm::Accel;

/// How to run, beyond the Plan: run-time facts and choices only.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// The run's name; the plan's name if not given.
    pub name: Option<String>,
    /// Force an accelerator instead of probing.
    pub accel: Option<Accel>,
    /// The guest's root file system, assembled for this run from the
    /// plan's image (a directory or an uncompressed `.tar`).
    pub rootfs: PathBuf,
    /// The root image (a store path) for images bottle built; then `rootfs`
    /// is not packed into the boot image.
    pub root_disk: Option<PathBuf>,
    /// Print what each part is handed (`bottle run --verbose`).
    pub verbose: bool,
    /// Where "allow always" writes routes: `approved.bottle` beside the
    /// recipe, when the run was started from one (`crate::supervise`).
    pub approved_file: Option<PathBuf>,
}

/// Why a run failed (the agent's own failure is an exit code, not an error).
#[derive(Debug, Error, Diagnostic)]
pub enum RunError {
    #[error("{part} failed to start: {reason}")]
    #[diagnostic(help("{help}"))]
    Start {
        part: String,
        reason: String,
        help: String,
    },
    #[error("{part} stopped unexpectedly: {status}\n{excerpt}")]
    #[diagnostic(help(
        "the full log was {log}; the run directory is removed, rerun to reproduce"
    ))]
    PartDied {
        part: String,
        status: String,
        excerpt: String,
        log: String,
    },
    #[error("the guest failed before the command ran: {reason}\n{excerpt}")]
    #[diagnostic(help("the lines above are the end of the guest's console"))]
    Guest { reason: String, excerpt: String },
    #[error("the agent's exit status cannot be trusted: {reason}\n{excerpt}")]
    #[diagnostic(help(
        "the status comes only from bottle's init, signed with this run's token; \
         something else ended the VM or wrote on the status port, so bottle exits \
         with {EXIT_UNTRUSTED_STATUS}, never the agent's claim (see docs/run.md); \
         the lines above are the end of the guest's console"
    ))]
    UntrustedStatus { reason: String, excerpt: String },
    #[error("cannot build the boot image: {0}")]
    #[diagnostic(help("check the rootfs and the kit (`bottle doctor`)"))]
    BootImage(String),
    #[error(
        "the installed gvproxy {version} cannot apply the bottle's stored network:\n{settings}"
    )]
    #[diagnostic(help(
        "install gvproxy 0.8.8 or later, which reads the stored config file (`bottle doctor` shows the version)"
    ))]
    Unapplied { version: String, settings: String },
}

/// `bottle run`'s exit code when the VM ended without a status from bottle's
/// init that carries the run's token ([`RunError::UntrustedStatus`]).
pub const EXIT_UNTRUSTED_STATUS: u8 = 125;

impl RunError {
    /// The exit code `bottle run` gives for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            RunError::UntrustedStatus { .. } => EXIT_UNTRUSTED_STATUS,
            _ => 1,
        }
    }
}

/// Realize `plan`: the agent's exit code, or why the run failed.
pub fn run(plan: &Plan, options: &RunOptions) -> miette::Result<i32> {
    plan.validate()?;
    // The egress sidecar runs on this runtime; it keeps up with many new
    // connections only with more workers than cores (see `recommended_workers`).
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(crate::sidecar::egress::recommended_workers())
        .enable_all()
        .build()
        .map_err(|e| miette::miette!("cannot start the async runtime: {e}"))?;
    // Children are spawned from inside block_on, i.e. on this (main) thread,
    // which lives as long as the run: their parent-death signal stays armed.
    let outcome = runtime.block_on(realize(plan, options));
    // The stdin reader blocks in a thread; do not wait for it.
    runtime.shutdown_background();
    outcome
}

/// Write the boot image `run` would build for `plan` (with no sidecar CA) to `out`.
pub fn write_boot_image(plan: &Plan, rootfs: &Path, out: &Path) -> miette::Result<()> {
    plan.validate()?;
    let kit = kit::Kit::locate()?;
    build_boot_image(
        rootfs,
        false,
        &kit,
        &launch::guest_spec(plan, Vec::new()),
        out,
    )?;
    Ok(())
}

async fn realize(plan: &Plan, options: &RunOptions) -> miette::Result<i32> {
    let name = options.name.clone().unwrap_or_else(|| plan.name.clone());
    // Signals first, so a Ctrl-C during start-up also cleans up.
    let mut signals = Signals::install().map_err(|e| miette::miette!("{e}"))?;
    let kit = kit::Kit::locate()?;
    let version = gvproxy_version(&kit.gvproxy).await?;
    let mut run = rundir::RunDir::create(&name, &plan.command)?;
    let mut supervisor = Supervisor::default();
    let token = guest::status::new_token()
        .map_err(|e| RunError::BootImage(format!("no random token: {e}")))?;
    let started = Instant::now();

    let outcome = async {
        let (raw, params) = terminal_params();
        let start = start(
            plan,
            options,
            &kit,
            version,
            &mut run,
            &mut supervisor,
            GuestFacts {
                params,
                token: &token,
            },
        );
        let output = tokio::select! {
            r = start => r?,
            signal = signals.next() => return Ok((Ending::Signal(signal), raw)),
        };
        log_line(
            &run,
            &format!("started in {} ms", started.elapsed().as_millis()),
        );
        let ending = supervisor.wait(&mut signals).await;
        if let (Ending::PoweredOff, Some(output)) = (&ending, output) {
            // The guest's last output is still in the pipe: let it out.
            let _ = tokio::time::timeout(Duration::from_secs(2), output).await;
        }
        Ok::<_, miette::Report>((ending, raw))
    }
    .await;

    // Whatever happened: stop every part, then judge.
    supervisor.stop().await;
    for (part, why) in &supervisor.noted {
        log_line(&run, &format!("{part} ended: {why}"));
    }
    let result = match outcome {
        Err(e) => Err(e),
        Ok((ending, raw)) => {
            drop(raw); // the terminal is the user's again before any message
            judge(ending, &run, &token)
        }
    };
    run.remove();
    result
}

/// Raw mode and the guest parameters that describe the user's terminal.
fn terminal_params() -> (Option<terminal::RawMode>, Vec<String>) {
    let raw = terminal::RawMode::enter();
    let mut params = vec![format!("bottle.tty={}", u8::from(raw.is_some()))];
    if raw.is_some() {
        if let Some((rows, cols)) = terminal::window_size() {
            params.push(format!("bottle.rows={rows}"));
            params.push(format!("bottle.cols={cols}"));
        }
        if let Ok(term) = std::env::var("TERM") {
            if !term.is_empty() && term.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
                params.push(format!("bottle.term={term}"));
            }
        }
    }
    (raw, params)
}

fn judge(ending: Ending, run: &rundir::RunDir, token: &str) -> miette::Result<i32> {
    use guest::status::Report;
    match ending {
        Ending::PoweredOff => {
            let content = std::fs::read(run.file(files::STATUS)).unwrap_or_default();
            match guest::status::read(&content, token) {
                Ok(Report::Exit(code)) => Ok(code),
                Ok(Report::Fail(reason)) => Err(RunError::Guest {
                    reason,
                    excerpt: excerpt(&run.file(files::CONSOLE)),
                }
                .into()),
                Err(untrusted) => Err(RunError::UntrustedStatus {
                    reason: untrusted.to_string(),
                    excerpt: excerpt(&run.file(files::CONSOLE)),
                }
                .into()),
            }
        }
        Ending::Signal(signal) => Ok(128 + signal),
        Ending::PartEnded { part, reason, log } => {
            let log = log.unwrap_or_else(|| run.file(RUN_LOG));
            Err(RunError::PartDied {
                status: reason,
                excerpt: excerpt(&log),
                log: log.display().to_string(),
                part,
            }
            .into())
        }
    }
}

/// What only this run's guest is told, beyond its spec.
struct GuestFacts<'a> {
    /// `bottle.tty=…` and the terminal's size and type, on the kernel command line.
    params: Vec<String>,
    /// The token the init signs the agent's exit status with (`guest::status`).
    token: &'a str,
}

/// Start every part in order; returns once qemu is running (with the task
/// that copies the guest's terminal output, if any).
async fn start(
    plan: &Plan,
    options: &RunOptions,
    kit: &kit::Kit,
    version: gvproxy::Version,
    run: &mut rundir::RunDir,
    supervisor: &mut Supervisor,
    guest: GuestFacts<'_>,
) -> miette::Result<Option<tokio::task::JoinHandle<()>>> {
    // 1. Sidecars, on Unix sockets in the run directory.
    let sidecars = sidecars::start(plan, run, supervisor, options).await?;

    // 2. What every part is handed.
    let accel = vmm::choose(options.accel, &kit.qemu, &kit.kernel, &rundir::runs_root()).await;
    log_line(run, &format!("accelerator: {accel:?}"));
    let facts = launch::Facts {
        run_dir: run.path(),
        kernel: &kit.kernel,
        accel,
        gvproxy: version,
        guest_params: guest.params,
        ca_certificates: sidecars
            .iter()
            .filter_map(|s| s.ca_certificate.clone())
            .collect(),
        root_disk: options.root_disk.as_deref(),
    };
    let launch = launch::launch(plan, &facts);
    if options.verbose {
        let text = serde_json::to_string_pretty(&launch.describe()).unwrap_or_default();
        eprintln!("bottle: gvproxy {version}; the run's parts are handed:\n{text}");
    }
    if !launch.gvproxy.unapplied.is_empty() {
        let settings: Vec<String> = launch
            .gvproxy
            .unapplied
            .iter()
            .map(|u| format!("  {u}"))
            .collect();
        return Err(RunError::Unapplied {
            version: version.to_string(),
            settings: settings.join("\n"),
        }
        .into());
    }
    let initramfs = run.file(files::BOOT_IMAGE);
    build_boot_image(
        &options.rootfs,
        options.root_disk.is_some(),
        kit,
        &launch.guest,
        &initramfs,
    )?;
    // The run's status token (see guest::status), appended for this run only.
    guest::initramfs::append_token(&initramfs, guest.token)
        .map_err(|e| RunError::BootImage(format!("writing the status token: {e}")))?;

    // 3. gvproxy in its own namespace, with bottle's listeners on the sidecar ports.
    let start_error = |reason: String, help: String| RunError::Start {
        part: "gvproxy".into(),
        reason,
        help,
    };
    let write = |path: &Path, text: &str| {
        std::fs::write(path, text).map_err(|e| {
            start_error(
                format!("writing {}: {e}", path.display()),
                "check that the run directory is writable".into(),
            )
        })
    };
    if let Some((path, text)) = &launch.gvproxy.config_file {
        write(path, text)?;
    }
    // gvproxy answers names from /etc/hosts and forwards the rest to the
    // resolvers in /etc/resolv.conf: in its namespace, neither knows anything.
    let hosts = run.file("gvproxy-hosts");
    let resolv = run.file("gvproxy-resolv.conf");
    write(&hosts, "127.0.0.1 localhost\n")?;
    write(&resolv, "nameserver 127.0.0.1\n")?;
    let mut command = tokio::process::Command::new(&kit.gvproxy);
    command.args(&launch.gvproxy.args);
    command.stdin(Stdio::null()).stdout(Stdio::null());
    let ports: Vec<u16> = plan.sidecars.iter().map(|s| s.guest_port).collect();
    let pending = netns::confine(&mut command, &ports, &hosts, &resolv)
        .map_err(|e| start_error(e.to_string(), "see docs/run.md".into()))?;
    let log = run.file("gvproxy.log");
    let pid = supervisor
        .spawn("gvproxy", command, &log)
        .map_err(|e| namespace_error(e, &log))?;
    run.add_part("gvproxy", pid)?;
    let listeners = pending.receive().map_err(|e| {
        start_error(
            e.to_string(),
            "see the gvproxy log in the run directory".into(),
        )
    })?;
    for (listener, sidecar) in listeners.into_iter().zip(&sidecars) {
        let socket = sidecar.socket.clone();
        supervisor.task(
            format!("the relay to the {} sidecar", sidecar.name),
            Role::Critical,
            async move {
                relay::serve(listener, socket)
                    .await
                    .map_err(|e| e.to_string())
            },
        );
    }
    let sockets = &launch.gvproxy_sockets;
    wait_for_sockets("gvproxy", &[&sockets.api, &sockets.qemu], supervisor, &log).await?;
    gvproxy::apply(&launch.gvproxy, sockets)
        .await
        .map_err(|reason| start_error(reason, format!("see {}", log.display())))?;
    let run_log = run.file(RUN_LOG);
    log_ready(&run_log, "gvproxy", run.started);

    // 4. The frame filter: qemu connects here, it connects to gvproxy.
    let vm_socket = run.file(files::VM_NETWORK);
    let listener = tokio::net::UnixListener::bind(&vm_socket).map_err(|e| RunError::Start {
        part: "the frame filter".into(),
        reason: e.to_string(),
        help: "check that the run directory is writable".into(),
    })?;
    let rules = launch.firewall.clone();
    let firewall_log = run_log.clone();
    let gvproxy_qemu = sockets.qemu.clone();
    log_ready(&run_log, "frame-filter", run.started);
    let since = run.started;
    supervisor.task("the frame filter", Role::Critical, async move {
        let (vm, _) = listener.accept().await.map_err(|e| e.to_string())?;
        // qemu connects as it starts: its network device is attached.
        log_ready(&firewall_log, "qemu", since);
        firewall::serve(vm, &gvproxy_qemu, rules, &firewall_log)
            .await
            .map_err(|e| e.to_string())?;
        // The VM closed its side: qemu is exiting; its exit ends the run.
        std::future::pending().await
    });

    // 5. qemu.
    let mut command = tokio::process::Command::new(&kit.qemu);
    command.args(&launch.qemu);
    command.stdin(Stdio::piped()).stdout(Stdio::piped());
    let log = run.file("qemu.log");
    let pid = supervisor
        .spawn(supervisor::VMM, command, &log)
        .map_err(|e| RunError::Start {
            part: "qemu".into(),
            reason: e.to_string(),
            help: kit::FIX_QEMU.into(),
        })?;
    run.add_part("qemu", pid)?;
    supervisor.task(
        "the guest's readiness",
        Role::BestEffort,
        watch_guest(run.file(files::CONSOLE), run_log, run.started),
    );
    let (stdin, stdout) = supervisor.processes().take_stdio(supervisor::VMM);
    if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        let control = run.file(files::CONTROL);
        supervisor.task(
            "the terminal size follower",
            Role::BestEffort,
            follow_window_size(control),
        );
    }
    Ok(attach_terminal(stdin, stdout, supervisor))
}

fn namespace_error(e: std::io::Error, log: &Path) -> RunError {
    let rootless = !nix::unistd::geteuid().is_root();
    let help = if rootless && e.raw_os_error() == Some(libc::EPERM) {
        "this kernel does not let unprivileged users create user namespaces \
         (see /proc/sys/kernel/unprivileged_userns_clone or AppArmor's userns restriction); run as root"
            .to_string()
    } else {
        format!("see {}", log.display())
    };
    RunError::Start {
        part: "gvproxy's network namespace".into(),
        reason: e.to_string(),
        help,
    }
}

async fn gvproxy_version(gvproxy: &Path) -> Result<gvproxy::Version, RunError> {
    let mut command = tokio::process::Command::new(gvproxy);
    command.arg("-version");
    let output = parts::run_bounded(command, Duration::from_secs(5)).await;
    let text = match output {
        Ok(Some(o)) => {
            String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr)
        }
        _ => String::new(),
    };
    gvproxy::Version::parse(&text).ok_or_else(|| RunError::Start {
        part: "gvproxy".into(),
        reason: format!("`{} -version` gave no version", gvproxy.display()),
        help: kit::FIX_GVPROXY.into(),
    })
}

/// Wait until `paths` exist, while the part is alive; its log if it dies.
async fn wait_for_sockets(
    part: &str,
    paths: &[&Path],
    supervisor: &mut Supervisor,
    log: &Path,
) -> Result<(), RunError> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if paths.iter().all(|p| p.exists()) {
            return Ok(());
        }
        if let Some(status) = supervisor.processes().exited(part) {
            return Err(RunError::Start {
                part: part.into(),
                reason: format!("it exited ({status}):\n{}", excerpt(log)),
                help: format!("the full log is {}", log.display()),
            });
        }
        if Instant::now() > deadline {
            return Err(RunError::Start {
                part: part.into(),
                reason: format!("its sockets did not appear within 15 s:\n{}", excerpt(log)),
                help: format!("the full log is {}", log.display()),
            });
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn build_boot_image(
    rootfs: &Path,
    root_disk: bool,
    kit: &kit::Kit,
    spec: &guest::spec::GuestSpec,
    out: &Path,
) -> Result<PathBuf, RunError> {
    if guest::init_binary().is_empty() {
        return Err(RunError::BootImage(
            "this bottle was built without a guest init (x86_64 Linux only)".into(),
        ));
    }
    // With a root disk the boot image holds only the init, its modules and
    // the spec; the root is mounted from the disk.
    let (rootfs, module_names) = if root_disk {
        (Vec::new(), [guest::MODULES, guest::ROOT_MODULES].concat())
    } else {
        (
            guest::rootfs::read(rootfs).map_err(|e| RunError::BootImage(e.to_string()))?,
            guest::MODULES.to_vec(),
        )
    };
    let modules = kit
        .module_files(&module_names)
        .map_err(|e| RunError::BootImage(e.to_string()))?;
    let bytes = guest::initramfs::build(guest::initramfs::BootImage {
        rootfs,
        init: guest::init_binary(),
        modules,
        spec,
    });
    std::fs::write(out, bytes)
        .map_err(|e| RunError::BootImage(format!("writing {}: {e}", out.display())))?;
    Ok(out.to_path_buf())
}

/// Join qemu's stdio (the guest's terminal port) to ours; the returned task
/// copies the guest's output and ends when qemu closes it.
fn attach_terminal(
    stdin: Option<tokio::process::ChildStdin>,
    stdout: Option<tokio::process::ChildStdout>,
    supervisor: &mut Supervisor,
) -> Option<tokio::task::JoinHandle<()>> {
    let interactive = std::io::IsTerminal::is_terminal(&std::io::stdin());
    if let Some(mut to_guest) = stdin {
        if interactive {
            supervisor.task("the terminal input", Role::BestEffort, async move {
                let mut from_user = tokio::io::stdin();
                let mut buffer = [0u8; 4096];
                loop {
                    match from_user.read(&mut buffer).await {
                        Ok(0) => return Err("the user's input closed".into()),
                        Err(e) => return Err(e.to_string()),
                        Ok(n) => to_guest
                            .write_all(&buffer[..n])
                            .await
                            .map_err(|e| e.to_string())?,
                    }
                }
            });
        } else {
            // Keep the pipe open (and silent): the command's stdin is /dev/null.
            supervisor.task("the terminal input", Role::BestEffort, async move {
                let _open = to_guest;
                std::future::pending().await
            });
        }
    }
    let mut from_guest = stdout?;
    Some(tokio::spawn(async move {
        let mut to_user = tokio::io::stdout();
        let mut buffer = [0u8; 16384];
        while let Ok(n) = from_guest.read(&mut buffer).await {
            if n == 0 {
                break;
            }
            let _ = to_user.write_all(&buffer[..n]).await;
            let _ = to_user.flush().await;
        }
    }))
}

/// Send the terminal's size to the guest's control port whenever it changes.
async fn follow_window_size(control: PathBuf) -> Result<(), String> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut resized = signal(SignalKind::window_change()).map_err(|e| e.to_string())?;
    // qemu creates the socket as it starts; a run without it just keeps its first size.
    let mut stream = None;
    for _ in 0..200 {
        if let Ok(s) = tokio::net::UnixStream::connect(&control).await {
            stream = Some(s);
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let Some(mut stream) = stream else {
        return Err("the guest's control port never opened".into());
    };
    while resized.recv().await.is_some() {
        if let Some((rows, cols)) = terminal::window_size() {
            stream
                .write_all(format!("winsize {rows} {cols}\n").as_bytes())
                .await
                .map_err(|e| e.to_string())?;
        }
    }
    std::future::pending().await
}

/// The last lines of a log, for error messages.
fn excerpt(path: &Path) -> String {
    let text = std::fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let tail = &lines[lines.len().saturating_sub(12)..];
    tail.iter()
        .map(|l| format!("  | {l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The run's own log in its directory (`bottle events` shows it as `run`).
pub(crate) const RUN_LOG: &str = "bottle.log";

/// One line in the run's own log.
fn log_line(run: &rundir::RunDir, line: &str) {
    append_line(&run.file(RUN_LOG), line);
}

fn append_line(log: &Path, line: &str) {
    use std::io::Write;
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
    {
        let _ = writeln!(f, "{line}");
    }
}

/// `ready: PART (N ms)` in the run's log, N since the run began: the
/// line `bottle events` turns into a `ready` event.
pub(crate) fn log_ready(log: &Path, part: &str, since: Instant) {
    append_line(
        log,
        &format!("ready: {part} ({} ms)", since.elapsed().as_millis()),
    );
}

/// Note in the run's log when the guest's init reports on its console
/// (`bottle-init: ready in N ms`) that it starts the agent's command.
async fn watch_guest(console: PathBuf, log: PathBuf, since: Instant) -> Result<(), String> {
    const MARK: &[u8] = b"bottle-init: ready in ";
    let mut seen = Vec::new();
    let mut offset = 0u64;
    loop {
        if let Ok(mut file) = tokio::fs::File::open(&console).await {
            use tokio::io::AsyncSeekExt;
            if file.seek(std::io::SeekFrom::Start(offset)).await.is_ok() {
                let mut more = Vec::new();
                if let Ok(n) = file.read_to_end(&mut more).await {
                    offset += n as u64;
                    // Keep only what a mark split across two reads needs.
                    let keep = seen.len().saturating_sub(MARK.len());
                    seen.drain(..keep);
                    seen.extend_from_slice(&more);
                    if seen.windows(MARK.len()).any(|w| w == MARK) {
                        log_ready(&log, "guest", since);
                        return std::future::pending().await;
                    }
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
