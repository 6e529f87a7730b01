//! `bottle-init`: PID 1 of every bottle guest. It loads the virtio modules,
//! takes an address from gvproxy by DHCP, writes `/etc/hosts` and
//! `/etc/resolv.conf`, runs the agent's command as the agent's user on the
//! console (the user's terminal on the host), reports the command's exit code
//! on the status port, and powers the VM off.
//!
//! It is built as a static binary by `build.rs` with `rustc` alone and
//! embedded in `bottle`, so it uses `std` and a few libc calls declared here,
//! and nothing else. Serial ports (wired by `realize::vmm::qemu`): ttyS0 is the
//! kernel console and this init's log, ttyS1 the agent's terminal, ttyS2 the
//! status line (`exit TOKEN N` or `fail TOKEN MESSAGE`, see `status.rs`),
//! ttyS3 the host's control lines (`winsize ROWS COLS` when the user's
//! terminal is resized).
//!
//! Before the agent starts, the init closes the ways its unprivileged user
//! had to become root or to speak for the init (`harden`): it forgets
//! bottle's own files, locks the kernel's module loading and user-triggerable
//! helpers, gives the root tree sane owners and modes, mounts it nosuid,
//! and holds the status port open with its device node removed. The agent
//! runs with no capabilities, an empty bounding set and `no_new_privs`.

// The init only reads specs; the writer half is for the host.
#[allow(dead_code)]
#[path = "layout.rs"]
mod layout;
#[allow(dead_code)]
#[path = "spec.rs"]
mod spec;
#[allow(dead_code)]
#[path = "status.rs"]
mod status;

use std::ffi::{CStr, CString};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use spec::GuestSpec;
use status::Report;

const TERMINAL: &str = "/dev/ttyS1";
const STATUS: &str = "/dev/ttyS2";
const CONTROL: &str = "/dev/ttyS3";
const SPEC: &str = "/.bottle/spec";
const MODULES: &str = "/.bottle/modules";
const INTERFACE: &str = "eth0";
const CA_FILE: &str = "/etc/ssl/certs/bottle-egress-ca.pem";

fn main() {
    let started = Instant::now();
    // Before anything else runs: the run's token, then only in this memory.
    let token = take_token();
    let mut port = None;
    let outcome = boot().and_then(|spec| {
        port = Some(harden(&spec)?);
        log(&format!("ready in {} ms", started.elapsed().as_millis()));
        run_agent(&spec)
    });
    let report = match outcome {
        Ok(code) => Report::Exit(code),
        Err(message) => {
            log(&format!("error: {message}"));
            Report::Fail(message)
        }
    };
    let port = port.or_else(|| open_status_port().ok());
    if let Some(mut port) = port {
        let _ = port.write_all(status::line(&token, &report).as_bytes());
        let _ = port.flush();
        // SAFETY: tcdrain only waits on the open descriptor `port` owns.
        unsafe { tcdrain(port.as_raw_fd()) };
    }
    // SAFETY: plain syscalls without pointers; PID 1 ends the VM here.
    unsafe {
        sync();
        reboot(RB_POWER_OFF);
    }
    // Only reached if the kernel refuses to power off; PID 1 must not exit.
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

/// Everything before the command: file systems, modules, network, config files.
fn boot() -> Result<GuestSpec, String> {
    mount_basics()?;
    let spec_text = fs::read_to_string(SPEC).map_err(|e| format!("reading {SPEC}: {e}"))?;
    let spec = GuestSpec::decode(&spec_text)?;
    load_modules()?;
    mount_root()?;
    let lease = network::configure(INTERFACE)?;
    write_config_files(&spec, &lease)?;
    if !spec.hostname.is_empty() {
        let name = spec.hostname.as_bytes();
        // SAFETY: `name` is a live byte slice and its length is passed with it.
        unsafe { sethostname(name.as_ptr(), name.len()) };
    }
    Ok(spec)
}

fn mount_basics() -> Result<(), String> {
    // No setuid or device files anywhere here; nothing to execute in /proc, /sys, /dev.
    let (secure, data) = (MS_NOSUID | MS_NODEV | MS_NOEXEC, MS_NOSUID | MS_NODEV);
    let mounts: [(&str, &str, &str, &str, u64); 5] = [
        ("proc", "/proc", "proc", "", secure),
        ("sysfs", "/sys", "sysfs", "", secure),
        (
            "devtmpfs",
            "/dev",
            "devtmpfs",
            "mode=0755",
            MS_NOSUID | MS_NOEXEC,
        ),
        (
            "devpts",
            "/dev/pts",
            "devpts",
            "mode=0620,ptmxmode=0666",
            MS_NOSUID | MS_NOEXEC,
        ),
        ("tmpfs", "/run", "tmpfs", "mode=0755", data),
    ];
    for (source, target, kind, options, flags) in mounts {
        let _ = fs::create_dir_all(target);
        let c = |s: &str| CString::new(s).expect("mount arguments have no NUL");
        let (source, target_c, kind, options) = (c(source), c(target), c(kind), c(options));
        // SAFETY: four valid C strings that outlive the call.
        let rc = unsafe {
            mount(
                source.as_ptr(),
                target_c.as_ptr(),
                kind.as_ptr(),
                flags,
                options.as_ptr().cast(),
            )
        };
        // devtmpfs may already be mounted by the kernel (CONFIG_DEVTMPFS_MOUNT).
        if rc != 0 && io::Error::last_os_error().raw_os_error() != Some(EBUSY) {
            return Err(format!("mounting {target}: {}", io::Error::last_os_error()));
        }
    }
    Ok(())
}

/// The run's status token (see `status.rs`), read from the boot image and
/// deleted there; empty if the image has none (the host then believes nothing).
fn take_token() -> String {
    let path = format!("/{}", status::TOKEN_FILE);
    let token = fs::read_to_string(&path).unwrap_or_default();
    let _ = fs::remove_file(&path);
    if token.is_empty() {
        log("warning: the boot image has no status token");
    }
    token.trim().to_string()
}

/// Close every way the agent had to become root or to report for the init;
/// returns the status port, held open. Runs after the root and the network
/// are up, whatever the root's source, and before the agent starts.
fn harden(spec: &GuestSpec) -> Result<File, String> {
    // Bottle's own root-only files: the spec and the modules, no longer needed.
    let _ = fs::remove_dir_all("/.bottle");
    lock_kernel()?;
    fix_tree(spec)?;
    // nosuid on the root: no setuid file of the image gives anyone root
    // (no_new_privs on the agent does too; this holds for its children's
    // children whatever they set).
    remount("/", MS_NOSUID)?;
    // The token lives in this process's memory: not even a process of the
    // same uid may read it (ptrace and /proc/1/mem need CAP_SYS_PTRACE).
    // SAFETY: prctl with integer arguments only.
    unsafe { prctl(PR_SET_DUMPABLE, 0i64, 0i64, 0i64, 0i64) };
    let port = open_status_port()?;
    // Without the node nothing else can open the port: creating one needs
    // CAP_MKNOD, which the agent never has.
    fs::remove_file(STATUS).map_err(|e| format!("hiding {STATUS}: {e}"))?;
    Ok(port)
}

fn open_status_port() -> Result<File, String> {
    OpenOptions::new()
        .write(true)
        .custom_flags(O_NOCTTY)
        .open(STATUS)
        .map_err(|e| format!("opening {STATUS}: {e}"))
}

/// Kernel settings written once all modules are loaded. A setting this
/// kernel does not have is skipped; one it refuses stops the boot.
const LOCKS: &[(&str, &str)] = &[
    // A module request (an IPv6 socket, a binary of unknown format) runs
    // the modprobe helper as root: an empty path runs nothing.
    ("kernel/modprobe", "\n"),
    ("kernel/modules_disabled", "1"),
    ("kernel/hotplug", "\n"),
    // Any helper the kernel still starts runs without capabilities.
    ("kernel/usermodehelper/bset", "0\t0\n"),
    ("kernel/usermodehelper/inheritable", "0\t0\n"),
    // Core dumps go to a file, never to a program run as root.
    ("kernel/core_pattern", "core\n"),
    ("fs/suid_dumpable", "0"),
    ("kernel/unprivileged_bpf_disabled", "1"),
    ("kernel/kexec_load_disabled", "1"),
    ("kernel/dmesg_restrict", "1"),
    ("kernel/kptr_restrict", "2"),
    ("kernel/perf_event_paranoid", "3"),
    // The agent may trace its own children (debuggers), nothing else.
    ("kernel/yama/ptrace_scope", "1"),
    ("kernel/sysrq", "0"),
    ("dev/tty/ldisc_autoload", "0"),
    ("vm/unprivileged_userfaultfd", "0"),
    ("net/core/bpf_jit_harden", "2"),
    ("fs/protected_symlinks", "1"),
    ("fs/protected_hardlinks", "1"),
    ("fs/protected_fifos", "1"),
    ("fs/protected_regular", "1"),
];

fn lock_kernel() -> Result<(), String> {
    let mut absent = Vec::new();
    for (name, value) in LOCKS {
        let path = format!("/proc/sys/{name}");
        match fs::write(&path, value) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => absent.push(*name),
            Err(e) => return Err(format!("setting {path}: {e}")),
        }
    }
    if !absent.is_empty() {
        log(&format!("this kernel has no {}", absent.join(", ")));
    }
    let modprobe = fs::read_to_string("/proc/sys/kernel/modprobe").unwrap_or_default();
    if !modprobe.trim().is_empty() {
        return Err(format!("kernel.modprobe is still `{}`", modprobe.trim()));
    }
    Ok(())
}

/// `layout`'s rule on the directories themselves: root's and not writable
/// by others, `/tmp` 1777; the agent's home and workdir keep their owners.
fn fix_tree(spec: &GuestSpec) -> Result<(), String> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let home = resolve_user(&spec.user).map(|u| u.home).unwrap_or_default();
    let own = [home.as_str(), spec.workdir.as_str()];
    let _ = fs::create_dir("/tmp");
    let dirs = layout::SYSTEM_DIRS
        .iter()
        .map(|d| (*d, false))
        .chain(layout::STICKY_DIRS.iter().map(|d| (*d, true)));
    for (dir, sticky) in dirs {
        // Scratch directories stay 1777 even as the agent's workdir.
        if !dir.is_empty() && !sticky && layout::is_agents(dir, &own) {
            continue;
        }
        let path = format!("/{dir}");
        // A symlink (`/bin -> usr/bin`) is covered where it points.
        let Ok(meta) = fs::symlink_metadata(&path) else {
            continue;
        };
        if !meta.is_dir() {
            continue;
        }
        let mode = if sticky {
            0o1777
        } else {
            layout::system_mode(meta.mode() & 0o7777)
        };
        let error = |e: io::Error| format!("securing {path}: {e}");
        if meta.uid() != 0 || (sticky && meta.gid() != 0) {
            std::os::unix::fs::chown(&path, Some(0), Some(0)).map_err(error)?;
        }
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).map_err(error)?;
    }
    Ok(())
}

/// Set the per-mount flags of the mount at `target` (a bind remount, which
/// works for any file system, the initramfs's included).
fn remount(target: &str, flags: u64) -> Result<(), String> {
    let target_c = CString::new(target).expect("mount targets have no NUL");
    // SAFETY: a valid C string for the target; null source, type and data
    // are what a bind remount takes.
    let rc = unsafe {
        mount(
            std::ptr::null(),
            target_c.as_ptr(),
            std::ptr::null(),
            MS_REMOUNT | MS_BIND | flags,
            std::ptr::null(),
        )
    };
    if rc != 0 {
        return Err(format!(
            "remounting {target}: {}",
            io::Error::last_os_error()
        ));
    }
    Ok(())
}

/// Load every module in `/.bottle/modules`, in rounds: a module whose
/// dependencies are not loaded yet fails and is tried again next round.
fn load_modules() -> Result<(), String> {
    let mut pending: Vec<_> = match fs::read_dir(MODULES) {
        Ok(dir) => dir.filter_map(|e| e.ok()).map(|e| e.path()).collect(),
        Err(_) => return Ok(()),
    };
    pending.sort();
    let empty = CString::default();
    loop {
        let before = pending.len();
        let mut failures = Vec::new();
        pending.retain(|path| {
            let Ok(file) = File::open(path) else {
                return false;
            };
            // SAFETY: finit_module reads the open module file and the NUL-terminated empty parameter string, both alive for the call.
            let rc = unsafe { syscall(SYS_FINIT_MODULE, file.as_raw_fd(), empty.as_ptr(), 0) };
            let errno = io::Error::last_os_error();
            if rc == 0 || errno.raw_os_error() == Some(EEXIST) {
                false
            } else {
                failures.push(format!("{}: {errno}", path.display()));
                true
            }
        });
        if pending.is_empty() {
            return Ok(());
        }
        if pending.len() == before {
            return Err(format!("cannot load modules: {}", failures.join("; ")));
        }
    }
}

/// With `bottle.root=DEVICE` on the command line: mount the erofs root
/// image read-only, a tmpfs overlay on top for the guest's writes, move the
/// kernel file systems into it and make it `/`. The initramfs (this init,
/// the modules) stays in memory underneath, unreachable.
fn mount_root() -> Result<(), String> {
    let cmdline = fs::read_to_string("/proc/cmdline").unwrap_or_default();
    let Some(device) = cmdline
        .split_whitespace()
        .find_map(|w| w.strip_prefix("bottle.root="))
    else {
        return Ok(());
    };
    // The disk appears once virtio_blk has probed it.
    let deadline = Instant::now() + Duration::from_secs(10);
    while fs::metadata(device).is_err() {
        if Instant::now() > deadline {
            return Err(format!("the root disk {device} did not appear"));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let (lower, rw, new_root) = ("/.bottle/lower", "/.bottle/rw", "/.bottle/root");
    for dir in [lower, rw, new_root] {
        fs::create_dir_all(dir).map_err(|e| format!("creating {dir}: {e}"))?;
    }
    mount_fs(device, lower, "erofs", MS_RDONLY, "")?;
    mount_fs("tmpfs", rw, "tmpfs", 0, "mode=0755")?;
    for dir in ["/.bottle/rw/upper", "/.bottle/rw/work"] {
        fs::create_dir_all(dir).map_err(|e| format!("creating {dir}: {e}"))?;
    }
    fs::set_permissions(
        "/.bottle/rw/upper",
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .map_err(|e| format!("/.bottle/rw/upper: {e}"))?;
    mount_fs(
        "overlay",
        new_root,
        "overlay",
        0,
        &format!("lowerdir={lower},upperdir=/.bottle/rw/upper,workdir=/.bottle/rw/work"),
    )?;
    for dir in ["/proc", "/sys", "/dev", "/run"] {
        let target = format!("{new_root}{dir}");
        let _ = fs::create_dir_all(&target);
        mount_fs(dir, &target, "", MS_MOVE, "")?;
    }
    std::env::set_current_dir(new_root).map_err(|e| format!("entering the root: {e}"))?;
    mount_fs(".", "/", "", MS_MOVE, "")?;
    std::os::unix::fs::chroot(".").map_err(|e| format!("switching to the root: {e}"))?;
    std::env::set_current_dir("/").map_err(|e| format!("entering /: {e}"))?;
    let _ = fs::create_dir_all("/tmp");
    Ok(())
}

fn mount_fs(
    source: &str,
    target: &str,
    kind: &str,
    flags: u64,
    options: &str,
) -> Result<(), String> {
    let c = |s: &str| CString::new(s).map_err(|_| format!("`{s}` holds a NUL byte"));
    let (source_c, target_c, kind_c, options_c) = (c(source)?, c(target)?, c(kind)?, c(options)?);
    // SAFETY: every pointer is a NUL-terminated string that outlives the
    // call; `kind` and `data` may be empty strings, which mount(2) accepts
    // for MS_MOVE (it ignores them).
    let rc = unsafe {
        mount(
            source_c.as_ptr(),
            target_c.as_ptr(),
            kind_c.as_ptr(),
            flags,
            options_c.as_ptr().cast(),
        )
    };
    if rc != 0 {
        return Err(format!(
            "mounting {source} on {target} ({kind}): {}",
            io::Error::last_os_error()
        ));
    }
    Ok(())
}

fn write_config_files(spec: &GuestSpec, lease: &network::Lease) -> Result<(), String> {
    fs::create_dir_all("/etc").map_err(|e| format!("creating /etc: {e}"))?;
    let mut hosts = String::from("127.0.0.1\tlocalhost\n::1\tlocalhost\n");
    for (address, name) in &spec.hosts {
        hosts.push_str(&format!("{address}\t{name}\n"));
    }
    write_file("/etc/hosts", &hosts)?;
    if !spec.ca_certificates.is_empty() {
        // Trusted by OpenSSL/curl through the system bundle, and by Node
        // through NODE_EXTRA_CA_CERTS (set by run_agent).
        let pem = spec.ca_certificates.concat();
        fs::create_dir_all("/etc/ssl/certs")
            .map_err(|e| format!("creating /etc/ssl/certs: {e}"))?;
        fs::write(CA_FILE, &pem).map_err(|e| format!("writing {CA_FILE}: {e}"))?;
        let bundle = "/etc/ssl/certs/ca-certificates.crt";
        let mut all = fs::read_to_string(bundle).unwrap_or_default();
        all.push_str(&pem);
        write_file(bundle, &all)?;
    }
    let resolv = match lease.dns {
        Some(dns) => format!("nameserver {}\n", network::dotted(dns)),
        None => String::new(),
    };
    write_file("/etc/resolv.conf", &resolv)
}

fn write_file(path: &str, text: &str) -> Result<(), String> {
    // The rootfs may ship these as symlinks (to systemd-resolved, say): replace them.
    let _ = fs::remove_file(path);
    fs::write(path, text).map_err(|e| format!("writing {path}: {e}"))
}

/// Run the command on the terminal port as the agent's user; its exit code.
fn run_agent(spec: &GuestSpec) -> Result<i32, String> {
    let cmdline = fs::read_to_string("/proc/cmdline").unwrap_or_default();
    let param = |key: &str| {
        cmdline
            .split_whitespace()
            .find_map(|word| {
                word.strip_prefix(key)
                    .and_then(|rest| rest.strip_prefix('='))
            })
            .map(str::to_string)
    };
    let interactive = param("bottle.tty").as_deref() == Some("1");
    let terminal = OpenOptions::new()
        .read(true)
        .write(true)
        .open(TERMINAL)
        .map_err(|e| format!("opening {TERMINAL}: {e}"))?;
    prepare_terminal(&terminal, interactive, &param);
    if interactive {
        follow_window_size(terminal.as_raw_fd());
    }

    let user = resolve_user(&spec.user)?;
    let workdir = if spec.workdir.is_empty() {
        user.home.clone()
    } else {
        spec.workdir.clone()
    };
    if fs::metadata(&workdir).is_err() {
        fs::create_dir_all(&workdir).map_err(|e| format!("creating workdir {workdir}: {e}"))?;
        let path = CString::new(workdir.as_str()).map_err(|_| "workdir has a NUL byte")?;
        // SAFETY: `path` is a NUL-terminated C string alive for the call.
        unsafe { chown(path.as_ptr(), user.uid, user.gid) };
    }

    let mut env: Vec<(String, String)> = vec![
        (
            "PATH".into(),
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
        ),
        ("HOME".into(), user.home.clone()),
        ("USER".into(), user.name.clone()),
        ("LOGNAME".into(), user.name.clone()),
        (
            "TERM".into(),
            param("bottle.term").unwrap_or_else(|| "linux".into()),
        ),
    ];
    if !interactive {
        // The agent's port is a terminal even when nobody reads it as one:
        // a pager would wait for keys that never come.
        env.push(("PAGER".into(), "cat".into()));
        env.push(("GIT_PAGER".into(), "cat".into()));
    }
    if !spec.ca_certificates.is_empty() {
        env.push(("NODE_EXTRA_CA_CERTS".into(), CA_FILE.into()));
    }
    for var in &spec.env {
        let (key, value) = var.split_once('=').unwrap_or((var, ""));
        env.retain(|(k, _)| k != key);
        env.push((key.to_string(), value.to_string()));
    }

    let program = find_program(
        &spec.command[0],
        env.iter()
            .find(|(k, _)| k == "PATH")
            .map(|(_, v)| v.as_str()),
    );
    let stdin = if interactive {
        Stdio::from(terminal.try_clone().map_err(|e| e.to_string())?)
    } else {
        Stdio::null()
    };
    let mut command = Command::new(&program);
    command
        .args(&spec.command[1..])
        .env_clear()
        .envs(env)
        .current_dir(&workdir)
        .stdin(stdin)
        .stdout(terminal.try_clone().map_err(|e| e.to_string())?)
        .stderr(terminal.try_clone().map_err(|e| e.to_string())?);
    let terminal_fd = terminal.as_raw_fd();
    let last_cap: i64 = fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or(63);
    let (uid, gid) = (i64::from(user.uid), i64::from(user.gid));
    // SAFETY: the closure runs in the forked child before exec and makes
    // only raw system calls with integer arguments or pointers to locals.
    unsafe {
        command.pre_exec(move || {
            // A session of its own with the terminal as controlling tty, so the
            // agent gets job control and Ctrl-C from the user's keyboard.
            setsid();
            ioctl(terminal_fd, TIOCSCTTY, 1);
            drop_privileges(uid, gid, last_cap)
        });
    }
    let child = command
        .spawn()
        .map_err(|e| format!("starting {}: {e}", spec.command[0]))?;
    let code = reap_until(child.id() as i32);
    // Let the command's last output leave the port before the status does.
    // SAFETY: tcdrain only waits on an fd this function holds open.
    unsafe { tcdrain(terminal_fd) };
    Ok(code)
}

/// In the agent's child, before exec: the agent's user and group, no
/// supplementary groups, no capabilities (none in the bounding set, so not
/// even a uid-0 agent gets any back at exec), and `no_new_privs`, so no
/// setuid or file-capability program raises it. std's `Command::uid` would
/// switch users before this runs, when dropping the bounding set no longer
/// works; so the switch is made here, by raw system calls (no allocation
/// and no glibc thread broadcast after fork).
///
/// # Safety
/// Only to be called in a forked child before exec.
unsafe fn drop_privileges(uid: i64, gid: i64, last_cap: i64) -> io::Result<()> {
    let check = |rc: i64| {
        if rc < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    };
    for cap in 0..=last_cap {
        check(prctl(PR_CAPBSET_DROP, cap, 0i64, 0i64, 0i64).into())?;
    }
    check(syscall(SYS_SETGROUPS, 0i64, std::ptr::null::<u32>()))?;
    check(syscall(SYS_SETRESGID, gid, gid, gid))?;
    check(syscall(SYS_SETRESUID, uid, uid, uid))?;
    check(prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0i64, 0i64, 0i64).into())?;
    let header = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let data = [CapData::default(); 2];
    check(syscall(
        SYS_CAPSET,
        &header as *const CapHeader,
        data.as_ptr(),
    ))?;
    check(prctl(PR_SET_NO_NEW_PRIVS, 1i64, 0i64, 0i64, 0i64).into())
}

/// Apply the host terminal's new sizes as they come in on the control port
/// (`winsize ROWS COLS` lines); setting the size signals SIGWINCH to the
/// agent. The terminal stays open until power-off, so its fd stays valid.
fn follow_window_size(terminal: RawFd) {
    let Ok(mut control) = File::open(CONTROL) else {
        return;
    };
    let mut attrs = Termios::default();
    // SAFETY: `attrs` is a Termios the call may fill; the fd is open.
    if unsafe { tcgetattr(control.as_raw_fd(), &mut attrs) } == 0 {
        attrs.c_lflag &= !(ECHO | ICANON | ISIG);
        attrs.c_iflag &= !ICRNL;
        // SAFETY: `attrs` holds the settings just read and changed; the fd is open.
        unsafe { tcsetattr(control.as_raw_fd(), TCSANOW, &attrs) };
    }
    std::thread::spawn(move || {
        let mut pending = Vec::new();
        let mut buffer = [0u8; 256];
        while let Ok(n) = control.read(&mut buffer) {
            if n == 0 {
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
            pending.extend_from_slice(&buffer[..n]);
            while let Some(end) = pending.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = pending.drain(..=end).collect();
                let line = String::from_utf8_lossy(&line);
                let mut words = line.split_whitespace();
                if let (Some("winsize"), Some(rows), Some(cols)) =
                    (words.next(), words.next(), words.next())
                {
                    if let (Ok(rows), Ok(cols)) = (rows.parse(), cols.parse()) {
                        let size = Winsize {
                            rows,
                            cols,
                            xpixel: 0,
                            ypixel: 0,
                        };
                        // SAFETY: TIOCSWINSZ reads one Winsize from the pointer, which is alive for the call.
                        unsafe { ioctl(terminal, TIOCSWINSZ, &size as *const Winsize as usize) };
                    }
                }
            }
        }
    });
}

fn prepare_terminal(terminal: &File, interactive: bool, param: &dyn Fn(&str) -> Option<String>) {
    let fd = terminal.as_raw_fd();
    let mut attrs = Termios::default();
    // SAFETY: `attrs` is a Termios the call may fill; the fd is open.
    if unsafe { tcgetattr(fd, &mut attrs) } != 0 {
        return;
    }
    if !interactive {
        // Output is a stream for a pipe or file on the host: no echo, no CR.
        attrs.c_lflag &= !(ECHO | ICANON | ISIG);
        attrs.c_oflag &= !ONLCR;
    }
    // SAFETY: `attrs` holds the settings just read and changed; the fd is open.
    unsafe { tcsetattr(fd, TCSANOW, &attrs) };
    let rows = param("bottle.rows")
        .and_then(|v| v.parse().ok())
        .unwrap_or(24);
    let cols = param("bottle.cols")
        .and_then(|v| v.parse().ok())
        .unwrap_or(80);
    let size = Winsize {
        rows,
        cols,
        xpixel: 0,
        ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads one Winsize from the pointer, which is alive for the call.
    unsafe { ioctl(fd, TIOCSWINSZ, &size as *const Winsize as usize) };
}

/// As PID 1, reap every child; return once `pid` has exited, with its code.
fn reap_until(pid: i32) -> i32 {
    loop {
        let mut status = 0;
        // SAFETY: `status` is a writable int for waitpid to fill.
        let got = unsafe { waitpid(-1, &mut status, 0) };
        if got == pid {
            return if status & 0x7f == 0 {
                (status >> 8) & 0xff
            } else {
                128 + (status & 0x7f)
            };
        }
        if got < 0 && io::Error::last_os_error().raw_os_error() != Some(EINTR) {
            return 127;
        }
    }
}

struct User {
    name: String,
    uid: u32,
    gid: u32,
    home: String,
}

fn resolve_user(user: &str) -> Result<User, String> {
    let user = if user.is_empty() { "root" } else { user };
    let passwd = fs::read_to_string("/etc/passwd").unwrap_or_default();
    let entries: Vec<Vec<&str>> = passwd
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .filter(|f| f.len() >= 6)
        .collect();
    if let Some(f) = entries.iter().find(|f| f[0] == user) {
        let uid = f[2]
            .parse()
            .map_err(|_| format!("bad uid for {user} in /etc/passwd"))?;
        let gid = f[3]
            .parse()
            .map_err(|_| format!("bad gid for {user} in /etc/passwd"))?;
        return Ok(User {
            name: user.into(),
            uid,
            gid,
            home: f[5].into(),
        });
    }
    let (uid, gid) = match user.split_once(':') {
        Some((u, g)) => (u.parse::<u32>(), g.parse::<u32>()),
        None => (user.parse::<u32>(), user.parse::<u32>()),
    };
    match (uid, gid) {
        (Ok(uid), Ok(gid)) => {
            let known = entries.iter().find(|f| f[2] == uid.to_string());
            Ok(User {
                name: known
                    .map(|f| f[0].to_string())
                    .unwrap_or_else(|| uid.to_string()),
                uid,
                gid,
                home: known
                    .map(|f| f[5].to_string())
                    .unwrap_or_else(|| "/".into()),
            })
        }
        _ => Err(format!("user `{user}` is not in the rootfs's /etc/passwd")),
    }
}

fn find_program(name: &str, path: Option<&str>) -> String {
    if name.contains('/') {
        return name.to_string();
    }
    for dir in path.unwrap_or("/usr/bin:/bin").split(':') {
        let candidate = format!("{dir}/{name}");
        if fs::metadata(&candidate)
            .map(|m| m.is_file())
            .unwrap_or(false)
        {
            return candidate;
        }
    }
    name.to_string()
}

fn log(message: &str) {
    // stderr of PID 1 is /dev/console: the kernel console port (ttyS0).
    let _ = writeln!(io::stderr(), "bottle-init: {message}");
}

/// DHCP over a packet socket: the interface has no address until the lease
/// arrives, so ordinary UDP sockets cannot send or receive yet.
mod network {
    use super::*;

    pub struct Lease {
        pub address: [u8; 4],
        pub netmask: [u8; 4],
        pub router: Option<[u8; 4]>,
        pub dns: Option<[u8; 4]>,
        pub mtu: Option<u16>,
    }

    pub fn dotted(a: [u8; 4]) -> String {
        format!("{}.{}.{}.{}", a[0], a[1], a[2], a[3])
    }

    pub fn configure(name: &str) -> Result<Lease, String> {
        let control = Socket::new(AF_INET, SOCK_DGRAM, 0)?;
        set_up(&control, "lo")?;
        // The driver probes asynchronously after its module loads.
        let deadline = Instant::now() + Duration::from_secs(30);
        while fs::metadata(format!("/sys/class/net/{name}")).is_err() {
            if Instant::now() > deadline {
                return Err(format!(
                    "no network interface {name} (is virtio_net loaded?)"
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        set_up(&control, name)?;
        let mut req = IfReq::new(name);
        control.ioctl(SIOCGIFINDEX, &mut req)?;
        let index = i32::from_ne_bytes(req.data[..4].try_into().expect("4 bytes"));
        control.ioctl(SIOCGIFHWADDR, &mut req)?;
        let mut mac = [0u8; 6];
        mac.copy_from_slice(&req.data[2..8]);

        let lease = dhcp(index, mac)?;
        let mut req = IfReq::new(name);
        req.set_sockaddr(lease.address);
        control.ioctl(SIOCSIFADDR, &mut req)?;
        req.set_sockaddr(lease.netmask);
        control.ioctl(SIOCSIFNETMASK, &mut req)?;
        if let Some(mtu) = lease.mtu {
            let mut req = IfReq::new(name);
            req.data[..4].copy_from_slice(&(mtu as i32).to_ne_bytes());
            let _ = control.ioctl(SIOCSIFMTU, &mut req);
        }
        if let Some(router) = lease.router {
            let route = RtEntry {
                rt_dst: sockaddr_in([0; 4]),
                rt_genmask: sockaddr_in([0; 4]),
                rt_gateway: sockaddr_in(router),
                rt_flags: RTF_UP | RTF_GATEWAY,
                ..RtEntry::default()
            };
            // SAFETY: SIOCADDRT reads one rtentry from the pointer, which is alive for the call.
            let rc = unsafe { ioctl(control.fd(), SIOCADDRT, &route as *const RtEntry as usize) };
            if rc != 0 {
                return Err(format!(
                    "adding the default route: {}",
                    io::Error::last_os_error()
                ));
            }
        }
        log(&format!("{name} has {} by DHCP", dotted(lease.address)));
        Ok(lease)
    }

    fn set_up(control: &Socket, name: &str) -> Result<(), String> {
        let mut req = IfReq::new(name);
        control.ioctl(SIOCGIFFLAGS, &mut req)?;
        let flags = i16::from_ne_bytes([req.data[0], req.data[1]]) | IFF_UP;
        req.data[..2].copy_from_slice(&flags.to_ne_bytes());
        control.ioctl(SIOCSIFFLAGS, &mut req)
    }

    fn dhcp(index: i32, mac: [u8; 6]) -> Result<Lease, String> {
        let socket = Socket::new(AF_PACKET, SOCK_DGRAM, (ETH_P_IP as u16).to_be() as i32)?;
        let timeout = Timeval {
            sec: 0,
            usec: 250_000,
        };
        // SAFETY: the option value points at a timeval of the length passed, alive for the call.
        unsafe {
            setsockopt(
                socket.fd(),
                SOL_SOCKET,
                SO_RCVTIMEO,
                &timeout as *const Timeval as *const u8,
                std::mem::size_of::<Timeval>() as u32,
            )
        };
        let xid = u32::from_ne_bytes(mac[2..6].try_into().expect("4 bytes")) ^ std::process::id();
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut offer: Option<([u8; 4], [u8; 4])> = None;
        while Instant::now() < deadline {
            let message = match offer {
                None => dhcp_message(xid, mac, DHCPDISCOVER, None),
                Some((address, server)) => {
                    dhcp_message(xid, mac, DHCPREQUEST, Some((address, server)))
                }
            };
            socket.send_broadcast(index, &udp_packet(&message))?;
            let sent = Instant::now();
            while sent.elapsed() < Duration::from_secs(1) {
                let Some(reply) = socket.receive_dhcp(xid) else {
                    continue;
                };
                match (reply.kind, offer) {
                    (DHCPOFFER, None) => {
                        offer = Some((reply.lease.address, reply.server.unwrap_or([0; 4])));
                        break;
                    }
                    (DHCPACK, Some(_)) => return Ok(reply.lease),
                    (DHCPNAK, _) => {
                        offer = None;
                        break;
                    }
                    _ => {}
                }
            }
        }
        Err("no DHCP lease from the gateway within 60 s".into())
    }

    const DHCPDISCOVER: u8 = 1;
    const DHCPOFFER: u8 = 2;
    const DHCPREQUEST: u8 = 3;
    const DHCPACK: u8 = 5;
    const DHCPNAK: u8 = 6;

    fn dhcp_message(
        xid: u32,
        mac: [u8; 6],
        kind: u8,
        request: Option<([u8; 4], [u8; 4])>,
    ) -> Vec<u8> {
        let mut m = vec![0u8; 240];
        m[0] = 1; // BOOTREQUEST
        m[1] = 1; // Ethernet
        m[2] = 6;
        m[4..8].copy_from_slice(&xid.to_be_bytes());
        m[10..12].copy_from_slice(&0x8000u16.to_be_bytes()); // reply by broadcast
        m[28..34].copy_from_slice(&mac);
        m[236..240].copy_from_slice(&[99, 130, 83, 99]);
        m.extend_from_slice(&[53, 1, kind]);
        if let Some((address, server)) = request {
            m.extend_from_slice(&[50, 4]);
            m.extend_from_slice(&address);
            m.extend_from_slice(&[54, 4]);
            m.extend_from_slice(&server);
        }
        m.extend_from_slice(&[55, 4, 1, 3, 6, 26, 255]);
        m
    }

    /// IPv4 + UDP from 0.0.0.0:68 to 255.255.255.255:67 around a DHCP message.
    fn udp_packet(payload: &[u8]) -> Vec<u8> {
        let total = 20 + 8 + payload.len();
        let mut p = vec![0u8; 28];
        p[0] = 0x45;
        p[2..4].copy_from_slice(&(total as u16).to_be_bytes());
        p[8] = 64; // TTL
        p[9] = 17; // UDP
        p[16..20].copy_from_slice(&[255; 4]);
        let checksum = ip_checksum(&p[..20]);
        p[10..12].copy_from_slice(&checksum.to_be_bytes());
        p[20..22].copy_from_slice(&68u16.to_be_bytes());
        p[22..24].copy_from_slice(&67u16.to_be_bytes());
        p[24..26].copy_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
        // UDP checksum 0: none, allowed for IPv4.
        p.extend_from_slice(payload);
        p
    }

    fn ip_checksum(header: &[u8]) -> u16 {
        let mut sum: u32 = header
            .chunks(2)
            .map(|w| u32::from(u16::from_be_bytes([w[0], w[1]])))
            .sum();
        while sum > 0xffff {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        !(sum as u16)
    }

    struct Reply {
        kind: u8,
        server: Option<[u8; 4]>,
        lease: Lease,
    }

    fn parse_reply(packet: &[u8], xid: u32) -> Option<Reply> {
        let ihl = usize::from(packet.first()? & 0x0f) * 4;
        if packet.get(9)? != &17 || packet.len() < ihl + 8 + 240 {
            return None;
        }
        let udp = &packet[ihl..];
        if u16::from_be_bytes([udp[2], udp[3]]) != 68 {
            return None;
        }
        let m = &udp[8..];
        if m[0] != 2 || u32::from_be_bytes(m[4..8].try_into().ok()?) != xid {
            return None;
        }
        let mut lease = Lease {
            address: m[16..20].try_into().ok()?,
            netmask: [255, 255, 255, 0],
            router: None,
            dns: None,
            mtu: None,
        };
        let (mut kind, mut server) = (0, None);
        let mut options = &m[240..];
        while let [code, rest @ ..] = options {
            if *code == 255 {
                break;
            }
            if *code == 0 {
                options = rest;
                continue;
            }
            let (&len, rest) = rest.split_first()?;
            let value = rest.get(..usize::from(len))?;
            let ip = || value.get(..4).and_then(|v| v.try_into().ok());
            match code {
                53 => kind = *value.first()?,
                54 => server = ip(),
                1 => lease.netmask = ip()?,
                3 => lease.router = ip(),
                6 => lease.dns = ip(),
                26 => lease.mtu = value.get(..2).map(|v| u16::from_be_bytes([v[0], v[1]])),
                _ => {}
            }
            options = &rest[usize::from(len)..];
        }
        Some(Reply {
            kind,
            server,
            lease,
        })
    }

    struct Socket(OwnedFd);

    impl Socket {
        fn new(domain: i32, kind: i32, protocol: i32) -> Result<Socket, String> {
            // SAFETY: socket takes only integers.
            let fd = unsafe { socket(domain, kind | SOCK_CLOEXEC, protocol) };
            if fd < 0 {
                return Err(format!("socket: {}", io::Error::last_os_error()));
            }
            // SAFETY: socket returned a new fd that nothing else owns.
            Ok(Socket(unsafe { OwnedFd::from_raw_fd(fd) }))
        }

        fn fd(&self) -> RawFd {
            self.0.as_raw_fd()
        }

        fn ioctl(&self, request: u64, req: &mut IfReq) -> Result<(), String> {
            // SAFETY: the request reads and writes one IfReq, which `req` points at exclusively for the call.
            let rc = unsafe { ioctl(self.fd(), request, req as *mut IfReq as usize) };
            if rc != 0 {
                let name =
                    CStr::from_bytes_until_nul(&req.name).map(|n| n.to_string_lossy().into_owned());
                return Err(format!(
                    "ioctl {request:#x} on {}: {}",
                    name.unwrap_or_default(),
                    io::Error::last_os_error()
                ));
            }
            Ok(())
        }

        fn send_broadcast(&self, index: i32, packet: &[u8]) -> Result<(), String> {
            let address = SockaddrLl {
                family: AF_PACKET as u16,
                protocol: (ETH_P_IP as u16).to_be(),
                ifindex: index,
                hatype: 0,
                pkttype: 0,
                halen: 6,
                addr: [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0],
            };
            // SAFETY: the frame and the address point at live buffers of the lengths passed.
            let rc = unsafe {
                sendto(
                    self.fd(),
                    packet.as_ptr(),
                    packet.len(),
                    0,
                    &address as *const SockaddrLl as *const u8,
                    std::mem::size_of::<SockaddrLl>() as u32,
                )
            };
            if rc < 0 {
                return Err(format!("sending DHCP: {}", io::Error::last_os_error()));
            }
            Ok(())
        }

        fn receive_dhcp(&self, xid: u32) -> Option<Reply> {
            let mut buffer = [0u8; 2048];
            // SAFETY: the fd is open for as long as `self`; `forget` below keeps this File from closing it.
            let mut file = unsafe { File::from_raw_fd(self.fd()) };
            let n = file.read(&mut buffer);
            std::mem::forget(file); // the fd belongs to self
            parse_reply(&buffer[..n.ok()?], xid)
        }
    }

    #[repr(C)]
    pub struct IfReq {
        pub name: [u8; 16],
        pub data: [u8; 24],
    }

    impl IfReq {
        fn new(name: &str) -> IfReq {
            let mut req = IfReq {
                name: [0; 16],
                data: [0; 24],
            };
            req.name[..name.len()].copy_from_slice(name.as_bytes());
            req
        }

        fn set_sockaddr(&mut self, address: [u8; 4]) {
            let s = sockaddr_in(address);
            self.data[..16].copy_from_slice(&s.0);
        }
    }

    #[repr(C)]
    #[derive(Default, Clone, Copy)]
    pub struct Sockaddr(pub [u8; 16]);

    fn sockaddr_in(address: [u8; 4]) -> Sockaddr {
        let mut s = [0u8; 16];
        s[..2].copy_from_slice(&(AF_INET as u16).to_ne_bytes());
        s[4..8].copy_from_slice(&address);
        Sockaddr(s)
    }

    #[repr(C)]
    #[derive(Default)]
    pub struct RtEntry {
        pad1: u64,
        rt_dst: Sockaddr,
        rt_gateway: Sockaddr,
        rt_genmask: Sockaddr,
        rt_flags: u16,
        pad2: i16,
        pad3: u64,
        pad4: usize,
        metric: i16,
        dev: usize,
        mtu: u64,
        window: u64,
        irtt: u16,
    }

    #[repr(C)]
    struct SockaddrLl {
        family: u16,
        protocol: u16,
        ifindex: i32,
        hatype: u16,
        pkttype: u8,
        halen: u8,
        addr: [u8; 8],
    }

    #[repr(C)]
    pub struct Timeval {
        pub sec: i64,
        pub usec: i64,
    }
}

// The few libc calls std does not wrap (x86_64 Linux, glibc linked statically).
const RB_POWER_OFF: i32 = 0x4321_fedc;
const SYS_FINIT_MODULE: i64 = 313;
const SYS_SETRESUID: i64 = 117;
const SYS_SETRESGID: i64 = 119;
const SYS_SETGROUPS: i64 = 116;
const SYS_CAPSET: i64 = 126;
const PR_SET_DUMPABLE: i32 = 4;
const PR_CAPBSET_DROP: i32 = 24;
const PR_SET_NO_NEW_PRIVS: i32 = 38;
const PR_CAP_AMBIENT: i32 = 47;
const PR_CAP_AMBIENT_CLEAR_ALL: i64 = 4;
const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;
const MS_NOSUID: u64 = 2;
const MS_NODEV: u64 = 4;
const MS_NOEXEC: u64 = 8;
const MS_REMOUNT: u64 = 32;
const MS_BIND: u64 = 4096;
const O_NOCTTY: i32 = 0o400;
const EINTR: i32 = 4;
const EBUSY: i32 = 16;
const EEXIST: i32 = 17;
const AF_INET: i32 = 2;
const AF_PACKET: i32 = 17;
const SOCK_DGRAM: i32 = 2;
const SOCK_CLOEXEC: i32 = 0o2_000_000;
const ETH_P_IP: i32 = 0x0800;
const SOL_SOCKET: i32 = 1;
const SO_RCVTIMEO: i32 = 20;
const SIOCADDRT: u64 = 0x890b;
const SIOCGIFFLAGS: u64 = 0x8913;
const SIOCSIFFLAGS: u64 = 0x8914;
const SIOCSIFADDR: u64 = 0x8916;
const SIOCSIFNETMASK: u64 = 0x891c;
const SIOCSIFMTU: u64 = 0x8922;
const SIOCGIFHWADDR: u64 = 0x8927;
const SIOCGIFINDEX: u64 = 0x8933;
const IFF_UP: i16 = 1;
const MS_RDONLY: u64 = 1;
const MS_MOVE: u64 = 8192;
const RTF_UP: u16 = 1;
const RTF_GATEWAY: u16 = 2;
const TIOCSCTTY: u64 = 0x540e;
const TIOCSWINSZ: u64 = 0x5414;
const TCSANOW: i32 = 0;
const ECHO: u32 = 0o10;
const ICANON: u32 = 0o2;
const ISIG: u32 = 0o1;
const ONLCR: u32 = 0o4;
const ICRNL: u32 = 0o400;

#[repr(C)]
#[derive(Default)]
struct Termios {
    c_iflag: u32,
    c_oflag: u32,
    c_cflag: u32,
    c_lflag: u32,
    c_line: u8,
    c_cc: [u8; 32],
    c_ispeed: u32,
    c_ospeed: u32,
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Default, Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

#[repr(C)]
struct Winsize {
    rows: u16,
    cols: u16,
    xpixel: u16,
    ypixel: u16,
}

extern "C" {
    fn mount(
        source: *const i8,
        target: *const i8,
        kind: *const i8,
        flags: u64,
        data: *const u8,
    ) -> i32;
    fn reboot(how: i32) -> i32;
    fn prctl(option: i32, ...) -> i32;
    fn sync();
    fn syscall(number: i64, ...) -> i64;
    fn sethostname(name: *const u8, len: usize) -> i32;
    fn setsid() -> i32;
    fn ioctl(fd: i32, request: u64, ...) -> i32;
    fn waitpid(pid: i32, status: *mut i32, options: i32) -> i32;
    fn chown(path: *const i8, uid: u32, gid: u32) -> i32;
    fn tcgetattr(fd: i32, termios: *mut Termios) -> i32;
    fn tcsetattr(fd: i32, action: i32, termios: *const Termios) -> i32;
    fn tcdrain(fd: i32) -> i32;
    fn socket(domain: i32, kind: i32, protocol: i32) -> i32;
    fn setsockopt(fd: i32, level: i32, name: i32, value: *const u8, len: u32) -> i32;
    fn sendto(
        fd: i32,
        buf: *const u8,
        len: usize,
        flags: i32,
        addr: *const u8,
        addrlen: u32,
    ) -> isize;
}
