//! The realizer: from a [`Plan`] to a running, contained VM and back.
//!
//! `run` starts, in order and each only once the one before is ready: the
//! sidecars (on Unix sockets in the run directory), gvproxy (in a network
//! namespace of its own holding only `lo`, with bottle's relay listeners on
//! the sidecar ports), the frame filter between VM and gvproxy, and qemu.
//! It joins the user's terminal to the agent's, waits for the first of: the
//! VM powering off, a part dying, SIGINT/SIGTERM/SIGHUP (also `bottle stop`);
//! then stops every part and removes the run directory. The agent's exit code
//! comes back from the guest's status port.
pub mod firewall;
pub mod guest;
pub mod gvproxy;
pub mod image;
pub mod kit;
pub mod netns;
pub mod parts;
pub mod plan;
pub mod relay;
pub mod rundir;
pub mod sidecars;
pub mod terminal;
pub mod vmm;

pub use plan::{Network, Plan, Sidecar, SidecarKind};

use miette::Diagnostic;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};
use thiserror::Error;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::signal::unix::{signal, SignalKind};
use vmm::Accel;

/// How to run, beyond the Plan.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// The run's name; the plan's name if not given.
    pub name: Option<String>,
    /// Force an accelerator instead of probing.
    pub accel: Option<Accel>,
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
    #[error("{part} stopped unexpectedly ({status})\n{excerpt}")]
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
    #[error("cannot build the boot image: {0}")]
    #[diagnostic(help("check the rootfs and the kit (`bottle doctor`)"))]
    BootImage(String),
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
pub fn write_boot_image(plan: &Plan, out: &Path) -> miette::Result<()> {
    plan.validate()?;
    let kit = kit::Kit::locate()?;
    build_boot_image(plan, &kit, &[], out)?;
    Ok(())
}

/// What ended the run.
enum Ending {
    PoweredOff,
    Signal(i32),
    PartDied(String, std::process::ExitStatus),
    TaskFailed(String),
}

async fn realize(plan: &Plan, options: &RunOptions) -> miette::Result<i32> {
    let name = options.name.clone().unwrap_or_else(|| plan.name.clone());
    // Signals first, so a Ctrl-C during start-up also cleans up.
    let mut interrupt = signal(SignalKind::interrupt()).map_err(|e| miette::miette!("{e}"))?;
    let mut terminate = signal(SignalKind::terminate()).map_err(|e| miette::miette!("{e}"))?;
    let mut hangup = signal(SignalKind::hangup()).map_err(|e| miette::miette!("{e}"))?;
    let kit = kit::Kit::locate()?;
    let version = gvproxy_version(&kit.gvproxy).await?;
    // gvproxy without a config file (0.8.1) serves only its built-in network:
    // a bottle's own subnet applies with versions that read one.
    let fixed;
    let plan = if version.takes_config_file() || plan.network == Network::default() {
        plan
    } else {
        fixed = Plan {
            network: Network::default(),
            ..plan.clone()
        };
        &fixed
    };
    let mut run = rundir::RunDir::create(&name, &plan.command)?;
    let mut parts = parts::Parts::default();
    let mut tasks = tokio::task::JoinSet::new();
    let started = Instant::now();

    let outcome = async {
        let (raw, params) = terminal_params();
        let ending = {
            let start = start(plan, options, &kit, version, &mut run, &mut parts, &mut tasks, params);
            let output = tokio::select! {
                r = start => r?,
                _ = interrupt.recv() => return Ok((Ending::Signal(libc::SIGINT), raw)),
                _ = terminate.recv() => return Ok((Ending::Signal(libc::SIGTERM), raw)),
                _ = hangup.recv() => return Ok((Ending::Signal(libc::SIGHUP), raw)),
            };
            log_line(&run, &format!("started in {} ms", started.elapsed().as_millis()));
            tokio::select! {
                (part, status) = parts.wait_any() => {
                    // When the VM powers off, gvproxy sees its network close
                    // and exits too, sometimes first: wait briefly for qemu.
                    let qemu = if part == "qemu" { Some(status) } else { parts.wait_for("qemu", Duration::from_secs(2)).await };
                    if qemu.is_some_and(|s| s.success()) {
                        // The guest's last output is still in the pipe: let it out.
                        if let Some(output) = output {
                            let _ = tokio::time::timeout(Duration::from_secs(2), output).await;
                        }
                        Ending::PoweredOff
                    } else {
                        Ending::PartDied(part, status)
                    }
                }
                Some(result) = tasks.join_next() => match result {
                    Ok(Err(e)) => Ending::TaskFailed(e),
                    Ok(Ok(())) => Ending::TaskFailed("a sidecar stopped".into()),
                    Err(e) => Ending::TaskFailed(e.to_string()),
                },
                _ = interrupt.recv() => Ending::Signal(libc::SIGINT),
                _ = terminate.recv() => Ending::Signal(libc::SIGTERM),
                _ = hangup.recv() => Ending::Signal(libc::SIGHUP),
            }
        };
        Ok::<_, miette::Report>((ending, raw))
    }
    .await;

    // Whatever happened: stop every part, then judge.
    parts.stop_all(Duration::from_secs(2)).await;
    tasks.shutdown().await;
    let result = match outcome {
        Err(e) => Err(e),
        Ok((ending, raw)) => {
            drop(raw); // the terminal is the user's again before any message
            judge(ending, &run, &mut parts)
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

fn judge(ending: Ending, run: &rundir::RunDir, parts: &mut parts::Parts) -> miette::Result<i32> {
    match ending {
        Ending::PoweredOff => match vmm::qemu::read_status(&run.file("status")) {
            Ok(code) => Ok(code),
            Err(reason) => Err(RunError::Guest {
                reason,
                excerpt: excerpt(&run.file("guest.log")),
            }
            .into()),
        },
        Ending::Signal(signal) => Ok(128 + signal),
        Ending::PartDied(part, status) => {
            let log = parts
                .log_of(&part)
                .map(Path::to_path_buf)
                .unwrap_or_default();
            Err(RunError::PartDied {
                status: status.to_string(),
                excerpt: excerpt(&log),
                log: log.display().to_string(),
                part,
            }
            .into())
        }
        Ending::TaskFailed(reason) => Err(RunError::PartDied {
            part: "a sidecar".into(),
            status: reason,
            excerpt: String::new(),
            log: run.file("bottle.log").display().to_string(),
        }
        .into()),
    }
}

/// Start every part in order; returns once qemu is running.
#[allow(clippy::too_many_arguments)]
async fn start(
    plan: &Plan,
    options: &RunOptions,
    kit: &kit::Kit,
    version: gvproxy::Version,
    run: &mut rundir::RunDir,
    parts: &mut parts::Parts,
    tasks: &mut tokio::task::JoinSet<Result<(), String>>,
    guest_params: Vec<String>,
) -> miette::Result<Option<tokio::task::JoinHandle<()>>> {
    // 1. Sidecars, on Unix sockets in the run directory.
    let sidecars = sidecars::start(plan, run, tasks).await?;

    // 2. The boot image (built while nothing waits on it yet).
    let kernel = plan.kernel.clone().unwrap_or_else(|| kit.kernel.clone());
    let initramfs = match &plan.initramfs {
        Some(path) => path.clone(),
        None => build_boot_image(plan, kit, &sidecars, &run.file("initrd.cpio"))?,
    };

    // 3. gvproxy in its own namespace, with bottle's listeners on the sidecar ports.
    let sockets = gvproxy::Sockets {
        api: run.file("gvproxy.sock"),
        qemu: run.file("gvproxy-qemu.sock"),
    };
    let hosts = run.file("gvproxy-hosts");
    let resolv = run.file("gvproxy-resolv.conf");
    let write = |path: &PathBuf, text: &str| {
        std::fs::write(path, text).map_err(|e| RunError::Start {
            part: "gvproxy".into(),
            reason: format!("writing {}: {e}", path.display()),
            help: "check that the run directory is writable".into(),
        })
    };
    // gvproxy answers names from /etc/hosts and forwards the rest to the
    // resolvers in /etc/resolv.conf: in its namespace, neither knows anything.
    write(&hosts, "127.0.0.1 localhost\n")?;
    write(&resolv, "nameserver 127.0.0.1\n")?;
    let mut command = tokio::process::Command::new(&kit.gvproxy);
    command.args(gvproxy::args(
        version,
        &plan.network,
        &sockets,
        &run.file("gvproxy.yaml"),
    ));
    command.stdin(Stdio::null()).stdout(Stdio::null());
    let ports: Vec<u16> = plan.sidecars.iter().map(|s| s.guest_port).collect();
    let pending =
        netns::confine(&mut command, &ports, &hosts, &resolv).map_err(|e| RunError::Start {
            part: "gvproxy".into(),
            reason: e.to_string(),
            help: "see docs/run.md".into(),
        })?;
    let log = run.file("gvproxy.log");
    let pid = parts
        .spawn("gvproxy", command, Some(&log))
        .map_err(|e| namespace_error(e, &log))?;
    run.add_part("gvproxy", pid)?;
    let listeners = pending.receive().map_err(|e| RunError::Start {
        part: "gvproxy".into(),
        reason: e.to_string(),
        help: "see the gvproxy log in the run directory".into(),
    })?;
    for (listener, socket) in listeners
        .into_iter()
        .zip(sidecars.iter().map(|s| s.socket.clone()))
    {
        tasks.spawn(async move {
            relay::serve(listener, socket)
                .await
                .map_err(|e| format!("relay: {e}"))
        });
    }
    wait_for_sockets("gvproxy", &[&sockets.api, &sockets.qemu], parts, &log).await?;
    gvproxy::apply(version, &plan.network, &sockets)
        .await
        .map_err(|reason| RunError::Start {
            part: "gvproxy".into(),
            reason,
            help: format!("see {}", log.display()),
        })?;

    // 4. The frame filter: qemu connects here, it connects to gvproxy.
    let vm_socket = run.file("vm-net.sock");
    let listener = tokio::net::UnixListener::bind(&vm_socket).map_err(|e| RunError::Start {
        part: "the frame filter".into(),
        reason: e.to_string(),
        help: "check that the run directory is writable".into(),
    })?;
    let rules = firewall::Rules {
        gateway: plan.network.gateway,
        host: plan.network.host,
        ports: ports.iter().copied().collect(),
    };
    let firewall_log = run.file("bottle.log");
    let gvproxy_qemu = sockets.qemu.clone();
    tasks.spawn(async move {
        let (vm, _) = listener
            .accept()
            .await
            .map_err(|e| format!("frame filter: {e}"))?;
        firewall::serve(vm, &gvproxy_qemu, rules, &firewall_log)
            .await
            .map_err(|e| format!("frame filter: {e}"))?;
        // The VM closed its side: qemu is exiting; its exit ends the run.
        std::future::pending().await
    });

    // 5. qemu.
    let accel = vmm::choose(options.accel, &kit.qemu, &kernel, &rundir::runs_root()).await;
    log_line(run, &format!("accelerator: {accel:?}"));
    let machine = vmm::qemu::Machine {
        accel,
        cpus: plan.cpus,
        memory_mib: plan.memory_mib,
        kernel: &kernel,
        initramfs: &initramfs,
        network: &vm_socket,
        console_log: &run.file("guest.log"),
        status: &run.file("status"),
        control: &run.file("control.sock"),
        guest_params: {
            let mut params = guest_params;
            if plan.root_disk.is_some() {
                params.push(format!("bottle.root={}", guest::ROOT_DEVICE));
            }
            params
        },
        root_disk: plan.root_disk.as_deref(),
    };
    let mut command = tokio::process::Command::new(&kit.qemu);
    command.args(vmm::qemu::args(&machine));
    command.stdin(Stdio::piped()).stdout(Stdio::piped());
    let log = run.file("qemu.log");
    let pid = parts
        .spawn("qemu", command, Some(&log))
        .map_err(|e| RunError::Start {
            part: "qemu".into(),
            reason: e.to_string(),
            help: kit::FIX_QEMU.into(),
        })?;
    run.add_part("qemu", pid)?;
    let (stdin, stdout) = parts.take_stdio("qemu");
    if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        let control = run.file("control.sock");
        tasks.spawn(async move { follow_window_size(control).await });
    }
    Ok(attach_terminal(stdin, stdout, tasks))
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
    parts: &mut parts::Parts,
    log: &Path,
) -> Result<(), RunError> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if paths.iter().all(|p| p.exists()) {
            return Ok(());
        }
        if let Some(status) = parts.exited(part) {
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
    plan: &Plan,
    kit: &kit::Kit,
    sidecars: &[sidecars::Running],
    out: &Path,
) -> Result<PathBuf, RunError> {
    // With a root disk the initramfs holds only the init, its modules and
    // the spec; the root is mounted from the disk.
    let (rootfs, module_names) = match &plan.root_disk {
        Some(_) => (Vec::new(), [guest::MODULES, guest::ROOT_MODULES].concat()),
        None => (
            guest::rootfs::read(&plan.rootfs).map_err(|e| RunError::BootImage(e.to_string()))?,
            guest::MODULES.to_vec(),
        ),
    };
    let modules = kit
        .module_files(&module_names)
        .map_err(|e| RunError::BootImage(e.to_string()))?;
    let spec = guest_spec(plan, sidecars);
    let bytes = guest::initramfs::build(guest::initramfs::BootImage {
        rootfs,
        init: guest::init_binary(),
        modules,
        spec: &spec,
    });
    if guest::init_binary().is_empty() {
        return Err(RunError::BootImage(
            "this bottle was built without a guest init (x86_64 Linux only)".into(),
        ));
    }
    std::fs::write(out, bytes)
        .map_err(|e| RunError::BootImage(format!("writing {}: {e}", out.display())))?;
    Ok(out.to_path_buf())
}

/// What the guest init needs: the command, the user, the environment with
/// the proxy variables, the sidecar name in /etc/hosts, the egress CA.
pub fn guest_spec(plan: &Plan, sidecars: &[sidecars::Running]) -> guest::spec::GuestSpec {
    guest::spec::GuestSpec {
        user: plan.user.clone(),
        workdir: plan.workdir.clone(),
        command: plan.command.clone(),
        env: plan
            .guest_env()
            .into_iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect(),
        hosts: vec![(
            plan.network.host.to_string(),
            plan.network.sidecar_name.clone(),
        )],
        hostname: plan.name.clone(),
        ca_certificates: sidecars
            .iter()
            .filter_map(|s| s.ca_certificate.clone())
            .collect(),
    }
}

/// Join qemu's stdio (the guest's terminal port) to ours; the returned task
/// copies the guest's output and ends when qemu closes it.
fn attach_terminal(
    stdin: Option<tokio::process::ChildStdin>,
    stdout: Option<tokio::process::ChildStdout>,
    tasks: &mut tokio::task::JoinSet<Result<(), String>>,
) -> Option<tokio::task::JoinHandle<()>> {
    let interactive = std::io::IsTerminal::is_terminal(&std::io::stdin());
    if let Some(mut to_guest) = stdin {
        if interactive {
            tasks.spawn(async move {
                let mut from_user = tokio::io::stdin();
                let mut buffer = [0u8; 4096];
                loop {
                    match from_user.read(&mut buffer).await {
                        Ok(0) | Err(_) => return std::future::pending().await,
                        Ok(n) => {
                            if to_guest.write_all(&buffer[..n]).await.is_err() {
                                return std::future::pending().await;
                            }
                        }
                    }
                }
            });
        } else {
            // Keep the pipe open (and silent): the command's stdin is /dev/null.
            tasks.spawn(async move {
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
        return std::future::pending().await;
    };
    while resized.recv().await.is_some() {
        if let Some((rows, cols)) = terminal::window_size() {
            if stream
                .write_all(format!("winsize {rows} {cols}\n").as_bytes())
                .await
                .is_err()
            {
                return std::future::pending().await;
            }
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

/// One line in the run's own log (`bottle.log` in the run directory).
fn log_line(run: &rundir::RunDir, line: &str) {
    use std::io::Write;
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(run.file("bottle.log"))
    {
        let _ = writeln!(f, "{line}");
    }
}
