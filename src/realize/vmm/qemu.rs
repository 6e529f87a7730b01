//! The qemu command line for a bottle VM. Small on purpose, which is also
//! what makes it fast under KVM: q35 with no default devices, no firmware
//! option ROMs (`romfile=`), no display, no disk — a direct kernel boot with
//! the initramfs as the root file system, one virtio-net card on bottle's
//! frame filter socket, and three serial ports: the kernel console and init
//! log (ttyS0, to a file), the agent's terminal (ttyS1, qemu's stdio, which
//! bottle joins to the user's terminal), the status port (ttyS2, a file
//! where the init writes `exit TOKEN N`, judged by `guest::status`) and the
//! control port (ttyS3, a socket where bottle sends the terminal's new size
//! when it changes).
use super::Accel;
use std::ffi::OsString;
use std::path::Path;

/// One VM's inputs.
pub struct Machine<'a> {
    pub accel: Accel,
    pub cpus: u32,
    pub memory_mib: u32,
    pub kernel: &'a Path,
    pub initramfs: &'a Path,
    /// The frame filter's socket qemu connects its network card to.
    pub network: &'a Path,
    /// The network card's address (the stored DHCP lease's).
    pub mac: crate::lower::network::Mac,
    pub console_log: &'a Path,
    pub status: &'a Path,
    /// The control port's socket (qemu listens; bottle connects).
    pub control: &'a Path,
    /// Parameters the init reads from /proc/cmdline (`bottle.tty=1` …).
    pub guest_params: Vec<String>,
    /// The root image, attached read-only as the first virtio disk (`vda`).
    pub root_disk: Option<&'a Path>,
}

/// The kernel command line: quiet, console on ttyS0, reboot (so qemu exits) on panic.
pub fn kernel_cmdline(params: &[String]) -> String {
    // cryptomgr.notests: the crypto self-tests cost a noticeable share of a
    // TCG boot and test the kernel's build, not this guest. ipv6.disable: the
    // guest network is IPv4 only (the frame filter drops IPv6).
    let mut line = String::from(
        "console=ttyS0 quiet loglevel=4 panic=-1 rdinit=/init tsc=reliable no_timer_check cryptomgr.notests ipv6.disable=1",
    );
    for p in params {
        line.push(' ');
        line.push_str(p);
    }
    line
}

pub fn args(m: &Machine<'_>) -> Vec<OsString> {
    let mut a: Vec<OsString> = Vec::new();
    let mut push = |items: &[&str]| a.extend(items.iter().map(OsString::from));
    match m.accel {
        Accel::Kvm => push(&["-accel", "kvm", "-cpu", "host"]),
        Accel::Tcg => push(&["-accel", "tcg", "-cpu", "max"]),
    }
    push(&[
        "-machine",
        "q35",
        "-nodefaults",
        "-no-user-config",
        "-display",
        "none",
        "-no-reboot",
    ]);
    let (smp, memory) = (m.cpus.to_string(), format!("{}M", m.memory_mib));
    push(&["-smp", &smp, "-m", &memory]);
    let path = |p: &Path| p.as_os_str().to_owned();
    let joined = |prefix: &str, p: &Path| {
        let mut s = OsString::from(prefix);
        s.push(p);
        s
    };
    a.extend([
        "-kernel".into(),
        path(m.kernel),
        "-initrd".into(),
        path(m.initramfs),
    ]);
    a.extend(["-append".into(), kernel_cmdline(&m.guest_params).into()]);
    a.extend(["-serial".into(), joined("file:", m.console_log)]);
    a.extend([
        "-chardev".into(),
        "stdio,id=term,signal=off".into(),
        "-serial".into(),
        "chardev:term".into(),
    ]);
    a.extend(["-serial".into(), joined("file:", m.status)]);
    let mut control = OsString::from("socket,id=control,server=on,wait=off,path=");
    control.push(m.control);
    a.extend([
        "-chardev".into(),
        control,
        "-serial".into(),
        "chardev:control".into(),
    ]);
    a.extend([
        "-netdev".into(),
        joined(
            "stream,id=net0,server=off,addr.type=unix,addr.path=",
            m.network,
        ),
    ]);
    a.extend([
        "-device".into(),
        format!("virtio-net-pci,netdev=net0,romfile=,mac={}", m.mac).into(),
    ]);
    if let Some(disk) = m.root_disk {
        // Read-only: many runs share one store image; writes go to the
        // guest's tmpfs overlay.
        a.extend([
            "-drive".into(),
            joined("if=none,id=root,format=raw,readonly=on,file=", disk),
            "-device".into(),
            "virtio-blk-pci,drive=root,romfile=".into(),
        ]);
    }
    a
}
