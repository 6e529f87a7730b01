//! The guest keeps its promise that the agent runs as an unprivileged user
//! and that the exit status comes from the process bottle started. Real
//! qemu (TCG here), gvproxy, kernel and init; a hostile script in the guest
//! (`tests/fixtures/guest-hardening.sh`) tries what an agent would: the
//! modprobe and binfmt tricks, writable system directories, setuid-root
//! programs, a forged status and a power-off from under the init.
//!
//! Needs the kit that `scripts/setup` installs; each boot takes a few
//! seconds. Every test gets its own runs root (BOTTLE_RUNTIME_DIR).
mod guest_support;
use guest_support::copy_with_libraries;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The guest's root: busybox, curl (for an IPv6 socket) and setuid-root
/// copies of coreutils' `id` and `cat`, a root-only file, a user `agent`
/// (uid 1000) and the check script. The tree is written the way a careless
/// image would be: `/` and `/usr` world-writable, `/etc` the agent's.
fn guest_rootfs(dir: &Path) -> PathBuf {
    let root = dir.join("rootfs");
    for sub in ["bin", "etc", "tmp", "home/agent", "root", "usr/bin", "work"] {
        std::fs::create_dir_all(root.join(sub)).unwrap();
    }
    let busybox = ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("busybox-static is installed (scripts/setup)");
    std::fs::copy(busybox, root.join("bin/busybox")).unwrap();
    for applet in [
        "sh", "cat", "echo", "sleep", "sed", "mkdir", "id", "true", "false", "ls", "env", "stat",
        "touch", "rm", "chmod", "dirname", "printf", "poweroff", "reboot", "[",
    ] {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(applet)).unwrap();
    }
    copy_with_libraries(Path::new("/usr/bin/curl"), &root);
    for (program, name) in [("/usr/bin/id", "id-suid"), ("/usr/bin/cat", "cat-suid")] {
        copy_with_libraries(Path::new(program), &root);
        let target = root.join("usr/bin").join(name);
        std::fs::rename(root.join(program.trim_start_matches('/')), &target).unwrap();
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o4755)).unwrap();
    }
    std::fs::write(root.join("etc/root-only"), "root's secret\n").unwrap();
    std::fs::set_permissions(
        root.join("etc/root-only"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    std::fs::write(
        root.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nagent:x:1000:1000:agent:/home/agent:/bin/sh\n",
    )
    .unwrap();
    std::fs::write(root.join("etc/group"), "root:x:0:\nagent:x:1000:\n").unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/guest-hardening.sh");
    std::fs::copy(script, root.join("bin/guest-hardening")).unwrap();
    // A careless image: writable by everyone, parts of it the agent's.
    for (path, mode) in [("", 0o1777), ("usr", 0o777), ("etc", 0o777)] {
        std::fs::set_permissions(root.join(path), std::fs::Permissions::from_mode(mode)).unwrap();
    }
    for path in ["home/agent", "work", "etc"] {
        std::os::unix::fs::chown(root.join(path), Some(1000), Some(1000)).unwrap();
    }
    root
}

struct Setup {
    dir: tempfile::TempDir,
    recipe: PathBuf,
    runs: PathBuf,
}

/// A recipe for the test rootfs running as `user` (built into the test's own store).
fn setup(name: &str, user: &str) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    guest_rootfs(dir.path());
    let runs = dir.path().join("runs");
    let recipe = dir.path().join(format!("{name}.bottle"));
    std::fs::write(
        &recipe,
        format!(
            r#"{{
  name = "{name}";
  image = {{ busybox = true; }};
  agent = {{ command = [ "/bin/guest-hardening" "{user}" ]; user = "{user}"; workdir = "/work"; }};
  cpus = 1;
  memory = 512;
}}
"#
        ),
    )
    .unwrap();
    Setup { dir, recipe, runs }
}

fn run(setup: &Setup) -> Output {
    Command::new(env!("CARGO_BIN_EXE_bottle"))
        .env("BOTTLE_RUNTIME_DIR", &setup.runs)
        .stdin(Stdio::null())
        .arg("run")
        .arg(&setup.recipe)
        .arg("--store")
        .arg(setup.dir.path().join("store"))
        .arg("--rootfs")
        .arg(setup.dir.path().join("rootfs"))
        .output()
        .unwrap()
}

fn assert_passed(output: &Output, checks: &[&str]) {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let failures: Vec<&str> = stdout.lines().filter(|l| l.starts_with("FAIL")).collect();
    assert!(
        failures.is_empty(),
        "checks failed in the guest: {failures:#?}\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    for check in checks {
        assert!(
            stdout.lines().any(|l| l == format!("PASS {check}")),
            "missing `{check}`\nstdout:\n{stdout}\nstderr:\n{stderr}"
        );
    }
}

const EVERY_AGENT: &[&str] = &[
    "no-new-privs",
    "no-caps-CapBnd",
    "no-caps-CapAmb",
    "no-caps-CapInh",
    "no-caps-CapPrm",
    "no-caps-CapEff",
    "bottle-files-gone",
    "status-port-hidden",
    "sysctl-kernel/modules_disabled",
    "sysctl-kernel/kptr_restrict",
    "sysctl-kernel/yama/ptrace_scope",
    "modprobe-empty",
    "binfmt-misc-unregistrable",
    "root-nosuid",
];

/// As the unprivileged agent: no way to root, no writable system directory,
/// no setuid effect, the usual work still works, and a forged status
/// changes nothing: `bottle run` exits with the script's own 7.
#[test]
fn the_agent_cannot_become_root_nor_forge_its_status() {
    let setup = setup("hardened", "agent");
    let output = run(&setup);
    let mut checks = EVERY_AGENT.to_vec();
    checks.extend([
        "runs-as-agent",
        "root-dir-0755",
        "tmp-1777",
        "system-dir-not-writable-/",
        "system-dir-not-writable-/sbin",
        "system-dir-not-writable-/usr",
        "system-dir-not-writable-/etc",
        "modprobe-trick",
        "binfmt-trick",
        "setuid-gives-no-root",
        "setuid-reads-nothing",
        "workdir-writable",
        "tmp-writable",
        "home-writable",
    ]);
    assert_passed(&output, &checks);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        !stdout.contains("wrote /dev/"),
        "the agent opened a serial port:\n{stdout}"
    );
    assert_eq!(
        output.status.code(),
        Some(7),
        "stderr:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    drop(setup.dir);
}

/// An agent running as uid 0 (a recipe may ask for it) still has no
/// capabilities; it writes `exit 0` on every serial port it can open and
/// powers the VM off from under the init: `bottle run` fails with its
/// distinct code and says why, never 0.
#[test]
fn a_status_not_from_the_init_fails_the_run_with_its_own_code() {
    let setup = setup("forger", "root");
    let output = run(&setup);
    assert_passed(&output, EVERY_AGENT);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(125),
        "stdout:\n{}\nstderr:\n{stderr}",
        String::from_utf8_lossy(&output.stdout)
    );
    assert!(
        stderr.contains("exit status cannot be trusted"),
        "stderr:\n{stderr}"
    );
    drop(setup.dir);
}
