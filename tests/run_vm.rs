//! `bottle run` end to end: real qemu (TCG here), real gvproxy, the real guest
//! kernel and bottle's own init, the real egress proxy, and curl inside the
//! guest. Needs the kit that `scripts/setup` installs (qemu, gvproxy, the
//! guest kernel, busybox-static, curl); each boot takes a few seconds.
//!
//! Every test gets its own runs root (BOTTLE_RUNTIME_DIR) and talks only to
//! servers it starts on this machine's loopback.
mod guest_support;
use guest_support::{copy_with_libraries, http_server};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The guest's root file system: busybox, curl with the host's libraries,
/// a user `agent` (uid 1000), and the check script.
fn guest_rootfs(dir: &Path) -> PathBuf {
    let root = dir.join("rootfs");
    for sub in ["bin", "etc", "tmp", "home/agent", "root", "usr/bin"] {
        std::fs::create_dir_all(root.join(sub)).unwrap();
    }
    let busybox = ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("busybox-static is installed (scripts/setup)");
    std::fs::copy(busybox, root.join("bin/busybox")).unwrap();
    for applet in [
        "sh", "cat", "echo", "sleep", "nslookup", "sed", "mkdir", "id", "true", "false", "ls",
        "env",
    ] {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(applet)).unwrap();
    }
    copy_with_libraries(Path::new("/usr/bin/curl"), &root);
    std::fs::write(
        root.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nagent:x:1000:1000:agent:/home/agent:/bin/sh\n",
    )
    .unwrap();
    std::fs::write(root.join("etc/group"), "root:x:0:\nagent:x:1000:\n").unwrap();
    std::fs::write(root.join("etc/nsswitch.conf"), "hosts: files dns\n").unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/guest-checks.sh");
    std::fs::copy(script, root.join("bin/guest-checks")).unwrap();
    let chown = Command::new("chown")
        .args(["-R", "1000:1000"])
        .arg(root.join("home/agent"))
        .status()
        .unwrap();
    assert!(chown.success());
    root
}

struct Setup {
    dir: tempfile::TempDir,
    recipe: PathBuf,
    runs: PathBuf,
}

impl Setup {
    /// `bottle run`'s arguments for this setup's bottle: its recipe, built
    /// into the test's own store, booting the test's root file system.
    fn target(&self) -> Vec<std::ffi::OsString> {
        let dir = self.dir.path();
        vec![
            self.recipe.clone().into(),
            "--store".into(),
            dir.join("store").into(),
            "--rootfs".into(),
            dir.join("rootfs").into(),
        ]
    }
}

/// A recipe for the test root file system whose egress allows `allowed_port`
/// on 127.0.0.1.
fn setup(name: &str, allowed_port: u16) -> Setup {
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
  agent = {{ command = [ "true" ]; user = "agent"; workdir = "/home/agent"; }};
  egress.routes = [ {{ host = "127.0.0.1"; ports = [ {allowed_port} ]; addresses = [ "127.0.0.1" ]; }} ];
  cpus = 1;
  memory = 512;
}}
"#
        ),
    )
    .unwrap();
    Setup { dir, recipe, runs }
}

fn bottle(setup: &Setup) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_bottle"));
    command
        .env("BOTTLE_RUNTIME_DIR", &setup.runs)
        .stdin(Stdio::null());
    command
}

/// Processes whose command line mentions `needle` (the test's own directory):
/// every qemu and gvproxy of a run names its run directory.
fn processes_mentioning(needle: &Path) -> Vec<String> {
    let needle = needle.to_string_lossy().into_owned();
    let me = std::process::id().to_string();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter(|e| {
            e.file_name()
                .to_string_lossy()
                .chars()
                .all(|c| c.is_ascii_digit())
        })
        .filter(|e| e.file_name().to_string_lossy() != me)
        .filter_map(|e| {
            let cmdline = std::fs::read(e.path().join("cmdline")).ok()?;
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            cmdline.contains(&needle).then_some(cmdline)
        })
        .collect()
}

/// Nothing of a run is left: no process, no run directory, no socket.
fn assert_nothing_left(setup: &Setup) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left = processes_mentioning(setup.dir.path());
        if left.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "processes left behind: {left:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let entries: Vec<_> = std::fs::read_dir(&setup.runs)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    assert!(
        entries.iter().all(|e| e == "kvm-probe"),
        "left in the runs root: {entries:?}"
    );
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap_or_default()
        .trim()
        .to_string()
}

#[test]
fn the_guest_reaches_only_its_sidecars() {
    let allowed = http_server("allowed-ok");
    let other = http_server("must-not-be-read");
    let setup = setup("contained", allowed);
    let output: Output = bottle(&setup)
        .arg("run")
        .args(setup.target())
        .arg("--")
        .args([
            "/bin/guest-checks",
            &allowed.to_string(),
            &other.to_string(),
            &host_name(),
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let failures: Vec<&str> = stdout.lines().filter(|l| l.starts_with("FAIL")).collect();
    assert!(
        failures.is_empty(),
        "checks failed in the guest: {failures:#?}\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    for check in [
        "PASS proxy-allows-declared-route",
        "PASS proxy-denies-undeclared-route",
        "PASS direct-192.168.127.254",
        "PASS direct-192.168.127.1",
        "PASS direct-10.0.2.2",
        "PASS gvproxy-api-closed",
        "PASS public-name-unresolved",
        "PASS names-checked",
        "PASS runs-as-agent",
    ] {
        assert!(
            stdout.contains(check),
            "missing `{check}`\nstdout:\n{stdout}\nstderr:\n{stderr}"
        );
    }
    assert!(!stdout.contains("must-not-be-read"));
    // The script exits 7: the guest command's code is bottle run's.
    assert_eq!(output.status.code(), Some(7), "stderr:\n{stderr}");
    assert_nothing_left(&setup);
}

/// Start a run of `sleep`, wait until the guest runs it; the child and the run's name.
// The child is returned for the caller to wait on (clippy cannot see that).
#[allow(clippy::zombie_processes)]
fn start_sleeping(setup: &Setup, name: &str) -> Child {
    let mut child = bottle(setup)
        .args(["run", "--name", name])
        .args(setup.target())
        .args(["--", "sleep", "600"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let log = setup.runs.join(name).join("guest.log");
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.contains("bottle-init: ready") {
            return child;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the guest did not come up; console:\n{text}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn wait_with_timeout(mut child: Child, limit: Duration) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("bottle run did not stop within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn sigint_and_sigterm_stop_everything() {
    let allowed = http_server("allowed-ok");
    let setup = setup("signals", allowed);
    for (signal, code) in [(libc::SIGINT, 130), (libc::SIGTERM, 143)] {
        let child = start_sleeping(&setup, "signals");
        // SAFETY: kill has no memory effects; the pid is a child this test has not reaped.
        unsafe { libc::kill(child.id() as i32, signal) };
        let status = wait_with_timeout(child, Duration::from_secs(20));
        assert_eq!(status.code(), Some(code), "signal {signal}");
        assert_nothing_left(&setup);
    }
}

#[test]
fn ps_lists_a_run_and_stop_ends_it_and_a_killed_bottle_is_cleaned_up() {
    let allowed = http_server("allowed-ok");
    let setup = setup("managed", allowed);
    let child = start_sleeping(&setup, "managed");
    let ps = bottle(&setup).args(["ps", "--json"]).output().unwrap();
    let runs: serde_json::Value = serde_json::from_slice(&ps.stdout).unwrap();
    assert_eq!(runs[0]["name"], "managed");
    assert_eq!(runs[0]["pid"], child.id());
    let stop = bottle(&setup).args(["stop", "managed"]).output().unwrap();
    assert!(
        stop.status.success(),
        "{}",
        String::from_utf8_lossy(&stop.stderr)
    );
    wait_with_timeout(child, Duration::from_secs(20));
    assert_nothing_left(&setup);

    // A bottle killed outright takes its parts with it, and the next
    // command removes what it left in the runs root.
    let child = start_sleeping(&setup, "managed");
    // SAFETY: kill has no memory effects; the pid is a child this test has not reaped.
    unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
    wait_with_timeout(child, Duration::from_secs(10));
    let ps = bottle(&setup).args(["ps", "--json"]).output().unwrap();
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&ps.stdout).unwrap(),
        serde_json::json!([])
    );
    assert_nothing_left(&setup);
}

#[test]
fn a_guest_failure_is_reported_with_its_console() {
    let allowed = http_server("allowed-ok");
    let setup = setup("broken", allowed);
    let output = bottle(&setup)
        .arg("run")
        .args(setup.target())
        .args(["--", "/no/such/program"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "stderr:\n{stderr}");
    assert!(stderr.contains("/no/such/program"), "stderr:\n{stderr}");
    assert_nothing_left(&setup);
}

/// The whole pipeline from a recipe: `bottle run FILE.bottle` evaluates,
/// checks, builds into the store, assembles the busybox image and boots it;
/// the guest reaches the declared route and nothing else.
#[test]
fn a_recipe_runs_end_to_end() {
    let allowed = http_server("recipe-allowed-body");
    let other = http_server("recipe-forbidden-body");
    let setup = setup("recipe-e2e", allowed);
    let recipe = setup.dir.path().join("e2e.bottle");
    std::fs::write(
        &recipe,
        format!(
            r#"{{
  name = "recipe-e2e";
  image = {{ busybox = true; }};
  agent.command = [ "sh" "-c" "wget -q -O - http://127.0.0.1:{allowed}/; echo; wget -q -O - http://127.0.0.1:{other}/ 2>&1; exit 3" ];
  egress.routes = [ {{ host = "127.0.0.1"; ports = [ {allowed} ]; addresses = [ "127.0.0.1" ]; }} ];
  cpus = 1;
  memory = 256;
}}
"#
        ),
    )
    .unwrap();
    let store = setup.dir.path().join("store");
    let output = bottle(&setup)
        .arg("run")
        .arg(&recipe)
        .arg("--store")
        .arg(&store)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        output.status.code(),
        Some(3),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(
        stdout.contains("recipe-allowed-body"),
        "the allowed route answers:\n{stdout}"
    );
    assert!(
        stdout.contains("403"),
        "the undeclared port is refused:\n{stdout}"
    );
    assert!(
        !stdout.contains("recipe-forbidden-body"),
        "nothing else is reachable:\n{stdout}"
    );
    assert!(
        stderr.contains("-recipe-e2e"),
        "the store path is reported:\n{stderr}"
    );
    let roots: Vec<_> = std::fs::read_dir(store.join(".roots"))
        .map(|d| d.filter_map(Result::ok).map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(
        roots.is_empty(),
        "the run's gc root is gone after it: {roots:?}"
    );
    assert_nothing_left(&setup);
}

/// The agent's environment, user and working directory inside a real guest
/// are the stored Smolfile's, the proxy variables agreeing in both spellings.
#[test]
fn the_guest_runs_the_stored_agent() {
    let allowed = http_server("allowed-ok");
    let setup = setup("stored-agent", allowed);
    let store = setup.dir.path().join("store");
    let result = setup.dir.path().join("result");
    let build = bottle(&setup)
        .arg("build")
        .arg(&setup.recipe)
        .arg("--store")
        .arg(&store)
        .arg("-o")
        .arg(&result)
        .output()
        .unwrap();
    assert!(
        build.status.success(),
        "{}",
        String::from_utf8_lossy(&build.stderr)
    );
    let smolfile: toml::Value =
        toml::from_str(&std::fs::read_to_string(result.join("smolfile.toml")).unwrap()).unwrap();
    let stored: Vec<String> = smolfile["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    let output = bottle(&setup)
        .arg("run")
        .arg(&result)
        .arg("--store")
        .arg(&store)
        .arg("--rootfs")
        .arg(setup.dir.path().join("rootfs"))
        .args(["--", "sh", "-c", "env; echo user=$(id -un) cwd=$(pwd)"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for variable in &stored {
        assert!(
            stdout.lines().any(|l| l.trim_end() == variable),
            "`{variable}` is stored but not in the guest:\n{stdout}"
        );
    }
    let value = |key: &str| {
        stored
            .iter()
            .find_map(|v| v.strip_prefix(&format!("{key}=")))
            .unwrap_or_else(|| panic!("{key} is stored"))
            .to_string()
    };
    assert_eq!(value("NO_PROXY"), value("no_proxy"));
    assert_eq!(value("HTTPS_PROXY"), value("https_proxy"));
    assert_eq!(value("HTTP_PROXY"), "http://proxy.internal:3128");
    assert!(stdout.contains("user=agent cwd=/home/agent"), "{stdout}");
    assert_nothing_left(&setup);
}

/// A bottle built into one store, copied to another directory and run from
/// there, is handed exactly the same launch.
#[test]
fn a_bottle_copied_to_another_store_runs_the_same() {
    let allowed = http_server("copied-ok");
    let setup = setup("copied", allowed);
    let first = setup.dir.path().join("store");
    let build = bottle(&setup)
        .arg("build")
        .arg(&setup.recipe)
        .arg("--store")
        .arg(&first)
        .arg("--json")
        .output()
        .unwrap();
    assert!(
        build.status.success(),
        "{}",
        String::from_utf8_lossy(&build.stderr)
    );
    let built: serde_json::Value = serde_json::from_slice(&build.stdout).unwrap();
    let path = PathBuf::from(built["path"].as_str().expect("build --json names the path"));
    let name = path.file_name().unwrap().to_owned();
    let second = setup.dir.path().join("elsewhere/store");
    std::fs::create_dir_all(second.parent().unwrap()).unwrap();
    let copy = Command::new("cp")
        .arg("-a")
        .arg(&first)
        .arg(&second)
        .status()
        .unwrap();
    assert!(copy.success());
    std::fs::remove_dir_all(&first).unwrap();
    let run = |store: &Path| {
        let output = bottle(&setup)
            .arg("run")
            .arg(store.join(&name))
            .arg("--store")
            .arg(store)
            .arg("--verbose")
            .arg("--rootfs")
            .arg(setup.dir.path().join("rootfs"))
            .args([
                "--",
                "sh",
                "-c",
                &format!("curl -sS -m 20 --noproxy '' http://127.0.0.1:{allowed}/"),
            ])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert!(output.status.success(), "{stdout}\n{stderr}");
        assert!(stdout.contains("copied-ok"), "{stdout}\n{stderr}");
        // The launch, with the store directory named neutrally.
        stderr.replace(&store.display().to_string(), "<store>")
    };
    let launch = run(&second);
    assert!(
        launch.contains("\"qemu\""),
        "--verbose shows the launch:\n{launch}"
    );
    // And the same bytes again from a third place.
    let third = setup.dir.path().join("third");
    let copy = Command::new("cp")
        .arg("-a")
        .arg(&second)
        .arg(&third)
        .status()
        .unwrap();
    assert!(copy.success());
    assert_eq!(run(&third), launch);
    assert_nothing_left(&setup);
}

/// A part that dies ends the run, and the error names it.
#[test]
fn a_dead_part_is_named() {
    let allowed = http_server("allowed-ok");
    let setup = setup("named", allowed);
    let child = start_sleeping(&setup, "named");
    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(setup.runs.join("named/run.json")).unwrap()).unwrap();
    let gvproxy = record["parts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p[0] == "gvproxy")
        .expect("gvproxy is a recorded part")[1]["pid"]
        .as_i64()
        .unwrap();
    // SAFETY: kill has no memory effects; the pid is the run's gvproxy, alive (the run waits on it).
    unsafe { libc::kill(gvproxy as i32, libc::SIGKILL) };
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("gvproxy stopped unexpectedly"), "{stderr}");
    assert_nothing_left(&setup);
}
