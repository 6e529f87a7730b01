//! A person in the loop, end to end: real qemu guests (TCG here) whose curl
//! goes through the real egress proxy to loopback servers this test starts,
//! requests held on `approve = true` routes and answered with `bottle
//! approve`, `bottle deny` and `bottle supervise` (driven in a real terminal
//! with tmux); and the preflight. Every test has its own runs root, store and
//! tmux server.
mod egress_support;

mod guest_support;
use bottle::supervise::broker::Pending;
use bottle::supervise::control::{Client, Reply, Request};
use guest_support::http_server;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The guest's root file system: busybox, curl with the host's libraries and
/// a user `agent` (uid 1000).
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
    for applet in ["sh", "cat", "echo", "sleep", "true", "tr"] {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(applet)).unwrap();
    }
    let ldd = Command::new("ldd").arg("/usr/bin/curl").output().unwrap();
    let mut files = vec![PathBuf::from("/usr/bin/curl")];
    for line in String::from_utf8_lossy(&ldd.stdout).lines() {
        let path = line.split("=>").last().unwrap().split_whitespace().next();
        if let Some(path) = path.filter(|p| p.starts_with('/')) {
            files.push(PathBuf::from(path));
        }
    }
    for file in files {
        let target = root.join(file.strip_prefix("/").unwrap());
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::copy(&file, &target).unwrap();
    }
    std::fs::write(
        root.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nagent:x:1000:1000:agent:/home/agent:/bin/sh\n",
    )
    .unwrap();
    std::fs::write(root.join("etc/group"), "root:x:0:\nagent:x:1000:\n").unwrap();
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

/// A recipe whose routes are `routes` (recipe text), running `script` with sh.
fn setup(name: &str, routes: &str, script: &str) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    guest_rootfs(dir.path());
    let runs = dir.path().join("runs");
    let recipe = dir.path().join(format!("{name}.bottle"));
    let script = serde_json::to_string(script).unwrap().replace("${", "\\${");
    std::fs::write(
        &recipe,
        format!(
            r#"{{
  name = "{name}";
  image = {{ busybox = true; }};
  agent = {{ command = [ "sh" "-c" {script} ]; user = "agent"; workdir = "/home/agent"; }};
  egress.routes = {routes};
  cpus = 1;
  memory = 512;
}}
"#
        ),
    )
    .unwrap();
    Setup { dir, recipe, runs }
}

impl Setup {
    fn bottle(&self) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_bottle"));
        command
            .env("BOTTLE_RUNTIME_DIR", &self.runs)
            .env("BOTTLE_APPROVE_TIMEOUT", "60")
            .stdin(Stdio::null());
        command
    }

    /// `bottle run`'s arguments: the recipe, the test's store and root file system.
    fn run_args(&self) -> Vec<std::ffi::OsString> {
        let dir = self.dir.path();
        vec![
            "run".into(),
            self.recipe.clone().into(),
            "--store".into(),
            dir.join("store").into(),
            "--rootfs".into(),
            dir.join("rootfs").into(),
        ]
    }

    fn start(&self, timeout_s: u64) -> Child {
        self.bottle()
            .env("BOTTLE_APPROVE_TIMEOUT", timeout_s.to_string())
            .args(self.run_args())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// The questions run `name` holds, once its control socket is up.
    fn pending(&self, name: &str) -> Option<Vec<Pending>> {
        let mut client = Client::connect(&self.runs.join(name).join("supervise.sock")).ok()?;
        match client.ask(&Request::List).ok()? {
            Reply::Pending(p) => Some(p),
            _ => None,
        }
    }

    /// Wait for a question about `port` that `ready` accepts.
    fn wait_for_question(
        &self,
        name: &str,
        port: u16,
        ready: impl Fn(&Pending) -> bool,
    ) -> Pending {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let pending = self.pending(name).unwrap_or_default();
            if let Some(p) = pending.iter().find(|p| p.port == port && ready(p)) {
                return p.clone();
            }
            assert!(
                Instant::now() < deadline,
                "no question about port {port}; pending: {pending:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn cli(&self, args: &[&str]) -> Output {
        let output = self.bottle().args(args).output().unwrap();
        assert!(
            output.status.success(),
            "bottle {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        output
    }
}

/// Wait for a run to end (bounded); its stdout and stderr.
fn finish(child: Child) -> (String, String) {
    let id = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let output = match rx.recv_timeout(Duration::from_secs(180)) {
        Ok(output) => output.unwrap(),
        Err(_) => {
            // SAFETY: kill has no memory effects; the pid is our unreaped child.
            unsafe { libc::kill(id as i32, libc::SIGKILL) };
            panic!("bottle run did not end within 180 s");
        }
    };
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// A route on loopback `port` that asks a person.
fn asking(port: u16) -> String {
    format!(
        r#"{{ host = "127.0.0.1"; ports = [ {port} ]; addresses = [ "127.0.0.1" ]; approve = true; }}"#
    )
}

/// Guest shell: fetch `http://127.0.0.1:PORT/PATH` through the proxy, print
/// `LABEL: body code` on one line.
fn fetch(label: &str, port: u16, path: &str) -> String {
    format!(
        "echo \"{label}: $(curl --noproxy '' -s -m 90 -w ' %{{http_code}}' http://127.0.0.1:{port}/{path} | tr '\\n' ' ')\""
    )
}

#[test]
fn held_requests_are_allowed_denied_coalesced_or_time_out() {
    let (a, b, c) = (
        http_server("a-ok"),
        http_server("b-ok"),
        http_server("c-ok"),
    );
    let script = [
        fetch("A", a, "first"),
        format!("({}) > b1 &", fetch("B1", b, "one")),
        format!("({}) > b2 &", fetch("B2", b, "two")),
        "wait".into(),
        "cat b1 b2".into(),
        fetch("C", c, "late"),
    ]
    .join("\n");
    let routes = format!("[ {} {} {} ]", asking(a), asking(b), asking(c));
    let setup = setup("held", &routes, &script);
    let child = setup.start(6);

    let question = setup.wait_for_question("held", a, |_| true);
    assert_eq!(question.path.as_deref(), Some("/first"));
    let approved = setup.cli(&["approve", "held", &question.id.to_string()]);
    assert!(String::from_utf8_lossy(&approved.stdout).contains("allowed 127.0.0.1"));

    // Two requests to one host: one question, two waiting on it.
    let question = setup.wait_for_question("held", b, |p| p.waiting == 2);
    let on_b: Vec<Pending> = setup
        .pending("held")
        .unwrap()
        .into_iter()
        .filter(|p| p.port == b)
        .collect();
    assert_eq!(on_b.len(), 1, "one question for both requests: {on_b:?}");
    let ps = setup.cli(&["ps", "--json"]);
    let runs: serde_json::Value = serde_json::from_slice(&ps.stdout).unwrap();
    assert_eq!(runs[0]["pending"], 1, "{runs}");
    setup.cli(&[
        "deny",
        "held",
        &question.id.to_string(),
        "--message",
        "use the mirror instead",
    ]);

    // C is never answered: after the (6 s) timeout, a 403.
    setup.wait_for_question("held", c, |_| true);
    // The run's events so far: its start, the proxy's decisions, the answers.
    let events = setup.cli(&["events", "held", "--json"]);
    let events: Vec<serde_json::Value> = String::from_utf8_lossy(&events.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let has = |f: &dyn Fn(&serde_json::Value) -> bool| events.iter().any(f);
    assert!(
        has(&|e| e["source"] == "run"
            && e["message"]
                .as_str()
                .unwrap_or("")
                .starts_with("started in")),
        "{events:#?}"
    );
    assert!(
        has(&|e| e["source"] == "egress" && e["decision"] == "allow" && e["port"] == a),
        "{events:#?}"
    );
    assert!(
        has(&|e| e["source"] == "supervise" && e["event"] == "denied" && e["port"] == b),
        "{events:#?}"
    );
    let follower = setup
        .bottle()
        .args(["events", "held", "--follow"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let (stdout, stderr) = finish(child);
    let (followed, _) = finish(follower);
    assert!(followed.contains("supervise  timed-out #"), "{followed}");
    assert!(
        followed.trim_end().ends_with("the run `held` has ended"),
        "{followed}"
    );
    assert!(
        stdout.contains("A: a-ok 200"),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    for label in ["B1", "B2"] {
        let line = stdout
            .lines()
            .find(|l| l.starts_with(&format!("{label}:")))
            .unwrap_or_else(|| panic!("no {label} line:\n{stdout}\n{stderr}"));
        assert!(line.ends_with(" 403"), "{line}");
        assert!(line.contains("use the mirror instead"), "{line}");
        assert!(
            line.contains(&format!("port {b}")),
            "says what to allow: {line}"
        );
    }
    let c_line = stdout.lines().find(|l| l.starts_with("C:")).unwrap();
    assert!(c_line.ends_with(" 403"), "{c_line}");
    assert!(c_line.contains("no person answered within 6 s"), "{c_line}");
}

#[test]
fn undeclared_hosts_ask_when_the_default_is_ask() {
    let (u, v) = (http_server("u"), http_server("v"));
    let script = [fetch("U", u, "x"), fetch("V", v, "y")].join("\n");
    let setup = setup("undeclared", "[ ]", &script);
    let recipe = std::fs::read_to_string(&setup.recipe).unwrap();
    std::fs::write(
        &setup.recipe,
        recipe.replace(
            "egress.routes = [ ];",
            "egress.routes = [ ]; egress.default = \"ask\";",
        ),
    )
    .unwrap();
    let child = setup.start(60);
    let question = setup.wait_for_question("undeclared", u, |_| true);
    assert_eq!(question.rule, "routes[0] (default: ask)");
    setup.cli(&[
        "deny",
        "undeclared",
        &question.id.to_string(),
        "-m",
        "not that one",
    ]);
    // Allowed by a person, the request still meets the SSRF guard: an
    // undeclared host gets no exemption, so loopback stays refused.
    let question = setup.wait_for_question("undeclared", v, |_| true);
    setup.cli(&["approve", "undeclared", &question.id.to_string()]);
    let (stdout, stderr) = finish(child);
    let line = |label: &str| {
        stdout
            .lines()
            .find(|l| l.starts_with(&format!("{label}:")))
            .unwrap_or_else(|| panic!("no {label} line:\n{stdout}\n{stderr}"))
            .to_string()
    };
    let (u_line, v_line) = (line("U"), line("V"));
    assert!(
        u_line.contains("not that one") && u_line.ends_with(" 403"),
        "{u_line}"
    );
    assert!(
        v_line.contains("loopback") && v_line.ends_with(" 403"),
        "{v_line}"
    );
}

#[test]
fn always_writes_the_import_file_and_the_rebuilt_bottle_does_not_ask() {
    let a = http_server("a-ok");
    let routes = format!("import ./approved.bottle ++ [ {} ]", asking(a));
    let setup = setup("always", &routes, &fetch("A", a, "x"));
    let approved = setup.dir.path().join("approved.bottle");
    std::fs::write(&approved, "[ ]\n").unwrap();

    let child = setup.start(60);
    let question = setup.wait_for_question("always", a, |_| true);
    setup.cli(&["approve", "always", &question.id.to_string(), "--always"]);
    let (stdout, first) = finish(child);
    assert!(stdout.contains("A: a-ok 200"), "stdout:\n{stdout}\n{first}");
    let text = std::fs::read_to_string(&approved).unwrap();
    assert!(
        text.contains(&format!(
            r#"{{ host = "127.0.0.1"; ports = [ {a} ]; addresses = [ "127.0.0.1" ]; }}"#
        )),
        "{text}"
    );

    // The next build differs, and nothing asks (a question would time out in 3 s).
    let child = setup.start(3);
    let (stdout, second) = finish(child);
    assert!(
        stdout.contains("A: a-ok 200"),
        "stdout:\n{stdout}\n{second}"
    );
    let store_path = |stderr: &str| {
        stderr
            .lines()
            .find(|l| l.contains("built)"))
            .map(str::to_string)
            .unwrap_or_default()
    };
    assert_ne!(store_path(&first), store_path(&second), "{first}\n{second}");
}

/// A tmux server of the test's own (`-L`), ended when dropped.
struct Tmux {
    socket: String,
}

impl Tmux {
    fn start(name: &str, command: &str) -> Tmux {
        let tmux = Tmux {
            socket: format!("bottle-test-{name}-{}", std::process::id()),
        };
        let status = Command::new("tmux")
            .args(["-L", &tmux.socket, "-f", "/dev/null", "new-session", "-d"])
            .args(["-x", "160", "-y", "30", command])
            .status()
            .expect("tmux is installed (scripts/setup)");
        assert!(status.success());
        tmux
    }

    fn screen(&self) -> String {
        let output = Command::new("tmux")
            .args(["-L", &self.socket, "capture-pane", "-p"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    fn keys(&self, keys: &[&str]) {
        let status = Command::new("tmux")
            .args(["-L", &self.socket, "send-keys"])
            .args(keys)
            .status()
            .unwrap();
        assert!(status.success());
    }

    fn wait_for(&self, text: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let screen = self.screen();
            if screen.contains(text) {
                return screen;
            }
            if Instant::now() > deadline {
                let sessions = Command::new("tmux")
                    .args(["-L", &self.socket, "ls"])
                    .output()
                    .unwrap();
                panic!(
                    "`{text}` never showed; the screen:\n{screen}\nsessions: {}{}",
                    String::from_utf8_lossy(&sessions.stdout),
                    String::from_utf8_lossy(&sessions.stderr)
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .status();
    }
}

fn shell_quote(path: &Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', "'\\''"))
}

#[test]
fn the_interactive_view_allows_for_the_run_and_denies_with_a_message() {
    let (a, b) = (http_server("a-ok"), http_server("b-ok"));
    let script = [
        fetch("A1", a, "one"),
        fetch("A2", a, "two"),
        fetch("B", b, "x"),
    ]
    .join("\n");
    let routes = format!("[ {} {} ]", asking(a), asking(b));
    let setup = setup("viewed", &routes, &script);
    let child = setup.start(60);
    setup.wait_for_question("viewed", a, |_| true);
    let tmux = Tmux::start(
        "viewed",
        &format!(
            "env BOTTLE_RUNTIME_DIR={} {} supervise viewed; sleep 60",
            shell_quote(&setup.runs),
            env!("CARGO_BIN_EXE_bottle")
        ),
    );
    tmux.wait_for(&format!("127.0.0.1:{a} GET /one"));
    tmux.keys(&["r"]);
    // A2 goes through without a question; B asks.
    tmux.wait_for(&format!("127.0.0.1:{b} GET /x"));
    tmux.keys(&["m"]);
    tmux.wait_for("message to the agent");
    tmux.keys(&["-l", "not today"]);
    tmux.keys(&["Enter"]);
    tmux.wait_for("deny: 127.0.0.1");
    let (stdout, stderr) = finish(child);
    assert!(
        stdout.contains("A1: a-ok 200"),
        "stdout:\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("A2: a-ok 200"),
        "stdout:\n{stdout}\n{stderr}"
    );
    let b_line = stdout.lines().find(|l| l.starts_with("B:")).unwrap();
    assert!(
        b_line.contains("not today") && b_line.ends_with(" 403"),
        "{b_line}"
    );
    tmux.wait_for("has ended");
}

#[test]
fn the_preflight_answered_no_starts_nothing_and_leaves_nothing() {
    let setup = setup("preflight", &format!("[ {} ]", asking(9)), "true");
    let store = setup.dir.path().join("store");
    let command = format!(
        "env BOTTLE_RUNTIME_DIR={} {} run {} --store {} --rootfs {}; echo EXIT=$?; sleep 120",
        shell_quote(&setup.runs),
        env!("CARGO_BIN_EXE_bottle"),
        shell_quote(&setup.recipe),
        shell_quote(&store),
        shell_quote(&setup.dir.path().join("rootfs")),
    );
    let tmux = Tmux::start("preflight", &command);
    let screen = tmux.wait_for("[y/N]");
    assert!(screen.contains("127.0.0.1 :9  [asks a person]"), "{screen}");
    assert!(
        screen.contains("agent     sh -c true  (as agent in /home/agent)"),
        "{screen}"
    );
    tmux.keys(&["n", "Enter"]);
    let screen = tmux.wait_for("EXIT=");
    assert!(
        screen.contains("not started") && screen.contains("EXIT=1"),
        "{screen}"
    );
    let runs: Vec<_> = std::fs::read_dir(&setup.runs)
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(runs.is_empty(), "left in the runs root: {runs:?}");
    let roots: Vec<_> = std::fs::read_dir(store.join(".roots"))
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(roots.is_empty(), "gc roots left: {roots:?}");

    // --dry-run prints the same plan, asks nothing, starts nothing.
    let dry = setup
        .bottle()
        .args(setup.run_args())
        .args(["--dry-run", "--json"])
        .output()
        .unwrap();
    assert!(dry.status.success());
    let plan: serde_json::Value = serde_json::from_slice(&dry.stdout).unwrap();
    assert_eq!(plan["routes"]["127.0.0.1"][0]["approve"], true, "{plan}");
    assert_eq!(plan["command"], serde_json::json!(["sh", "-c", "true"]));
    assert!(!setup.runs.exists() || std::fs::read_dir(&setup.runs).unwrap().next().is_none());
}

/// One plain-HTTP request through the proxy on a new connection; its latency.
async fn timed_request(proxy: std::net::SocketAddr, port: u16) -> Duration {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let started = Instant::now();
    let mut stream = tokio::net::TcpStream::connect(proxy).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let request = format!(
        "GET http://127.0.0.1:{port}/bench HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await.unwrap();
    assert!(
        response.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&response)
    );
    started.elapsed()
}

/// The figure of docs/supervise.md: a request on a route allowed for the run
/// (after one question) costs the same as one on an allowed route.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "a benchmark: cargo test --release --test supervise -- --ignored --nocapture latency"]
async fn latency_of_a_route_approved_for_the_run_vs_an_allowed_route() {
    use bottle::supervise::{Broker, Verdict};
    use std::sync::Arc;
    let (allowed, _a) = egress_support::echo_server(None).await;
    let (asked, _b) = egress_support::echo_server(None).await;
    let policy = format!(
        "version: 1\nbottle: bench\nroutes:\n  - host: 127.0.0.1\n    ports: [{}]\n    addresses: [127.0.0.1]\n  - host: 127.0.0.1\n    ports: [{}]\n    addresses: [127.0.0.1]\n    approve: true\n",
        allowed.port(),
        asked.port()
    );
    let broker = Arc::new(Broker::new(
        "bench",
        Duration::from_secs(60),
        None,
        None,
        vec![],
    ));
    let mut options = egress_support::options(None);
    options.approver = Some(broker.clone());
    let proxy = egress_support::Proxy::start(&policy, options).await;
    // The first request asks; allow it for the run.
    let first = tokio::spawn(timed_request(proxy.addr, asked.port()));
    let id = loop {
        if let Some(p) = broker.pending().first() {
            break p.id;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    broker.decide(id, Verdict::Run, None).unwrap();
    first.await.unwrap();
    let (rounds, per_round) = (20, 200);
    let mut times: [Vec<Duration>; 2] = [Vec::new(), Vec::new()];
    for round in 0..rounds {
        // Alternate which goes first, so drift on a shared host falls on both.
        let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
        for which in order {
            let port = [allowed.port(), asked.port()][which];
            for _ in 0..per_round {
                times[which].push(timed_request(proxy.addr, port).await);
            }
        }
    }
    let stats = |t: &mut Vec<Duration>| {
        t.sort();
        let mean = t.iter().sum::<Duration>() / t.len() as u32;
        (t[t.len() / 2], mean, t[t.len() * 99 / 100])
    };
    let (a_median, a_mean, a_p99) = stats(&mut times[0]);
    let (b_median, b_mean, b_p99) = stats(&mut times[1]);
    println!(
        "{} requests each, a new connection per request, plain HTTP through the proxy to a loopback server:\n  allowed route:          median {a_median:?}, mean {a_mean:?}, p99 {a_p99:?}\n  approved for the run:   median {b_median:?}, mean {b_mean:?}, p99 {b_p99:?}\n  median ratio {:.3}",
        rounds * per_round,
        b_median.as_secs_f64() / a_median.as_secs_f64()
    );
    assert!(
        broker.pending().is_empty(),
        "nothing asked after the run approval"
    );
}

/// Run `git` on the host with no user or system configuration.
fn host_git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_AUTHOR_NAME", "Test")
        .env("GIT_AUTHOR_EMAIL", "test@example.com")
        .env("GIT_COMMITTER_NAME", "Test")
        .env("GIT_COMMITTER_EMAIL", "test@example.com")
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Add git (with the helpers an HTTP push runs) to the guest root.
fn add_git(root: &Path) {
    guest_support::copy_with_libraries(Path::new("/usr/bin/git"), root);
    // The exec path of that git (not of another git first on the PATH).
    let exec_path = Command::new("/usr/bin/git")
        .arg("--exec-path")
        .output()
        .unwrap()
        .stdout;
    let exec_path = String::from_utf8(exec_path).unwrap().trim().to_string();
    for helper in ["git", "git-remote-http"] {
        guest_support::copy_with_libraries(&Path::new(&exec_path).join(helper), root);
    }
    for applet in ["grep", "env", "mkdir"] {
        let _ = std::os::unix::fs::symlink("busybox", root.join("bin").join(applet));
    }
    std::fs::write(root.join("etc/nsswitch.conf"), "hosts: files dns\n").unwrap();
}

/// Guest shell: a commit, then `git push origin HEAD:REF`, as `== LABEL`
/// and the push's output and exit code.
fn push(label: &str, reference: &str) -> String {
    format!(
        "echo \"== {label}\"; git commit -q --allow-empty -m '{label}'; \
         git push origin HEAD:{reference} 2>&1; echo \"exit=$?\""
    )
}

fn section<'a>(stdout: &'a str, name: &str) -> &'a str {
    let start = stdout
        .find(&format!("== {name}\n"))
        .unwrap_or_else(|| panic!("no section {name} in:\n{stdout}"));
    let rest = &stdout[start + name.len() + 4..];
    &rest[..rest.find("\n== ").map_or(rest.len(), |e| e + 1)]
}

/// Stop a run that went wrong and fail with what it printed.
fn give_up(child: Child, why: &str) -> ! {
    // SAFETY: kill has no memory effects; the pid is our unreaped child.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let (stdout, stderr) = finish(child);
    panic!("{why}\nstdout:\n{stdout}\nstderr:\n{stderr}");
}

/// A remote with `push-ask`: a push inside the patterns goes through
/// without a question; one outside is held until `bottle approve` (once,
/// then for the run), refused with the person's message after `bottle
/// deny`, and refused after the timeout. Meanwhile `bottle ps` counts the
/// question and `bottle events` has a `ready` event for every part.
#[test]
fn pushes_outside_the_patterns_ask_a_person() {
    let dir = tempfile::tempdir().unwrap();
    let root = guest_rootfs(dir.path());
    add_git(&root);
    let runs = dir.path().join("runs");
    // The upstream: a bare repository on the host with `main`.
    let upstream = dir.path().join("upstream.git");
    host_git(
        dir.path(),
        &[
            "init",
            "-q",
            "--bare",
            "-b",
            "main",
            upstream.to_str().unwrap(),
        ],
    );
    let seed = dir.path().join("seed");
    host_git(
        dir.path(),
        &["init", "-q", "-b", "main", seed.to_str().unwrap()],
    );
    host_git(&seed, &["commit", "-q", "--allow-empty", "-m", "start"]);
    host_git(&seed, &["push", "-q", upstream.to_str().unwrap(), "main"]);

    let script = [
        push("inside", "refs/heads/claude/in"),
        push("once", "refs/heads/main"),
        push("run", "refs/heads/main"),
        push("remembered", "refs/heads/main"),
        push("denied", "refs/heads/release"),
        push("late", "refs/heads/late"),
        "echo '== end'".into(),
    ]
    .join("\n");
    let script = serde_json::to_string(&script)
        .unwrap()
        .replace("${", "\\${");
    let recipe = dir.path().join("pushes.bottle");
    std::fs::write(
        &recipe,
        format!(
            r#"{{
  name = "pushes";
  image = {{ busybox = true; }};
  agent = {{ command = [ "sh" "-c" {script} ]; user = "agent"; workdir = "/home/agent/project"; }};
  git.origin = {{ url = "{}"; push = [ "refs/heads/claude/*" ]; push-ask = true; checkout = "main"; }};
  cpus = 1;
  memory = 512;
}}
"#,
            upstream.display()
        ),
    )
    .unwrap();
    let setup = Setup {
        dir,
        recipe,
        runs: runs.clone(),
    };
    let child = setup.start(10);

    // The run's events, from its start to its end.
    let deadline = Instant::now() + Duration::from_secs(120);
    while !runs.join("pushes/run.json").exists() {
        assert!(Instant::now() < deadline, "the run never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    let follower = setup
        .bottle()
        .args(["events", "pushes", "--follow", "--json"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();

    let push_question = |reference: &str, after: u64| -> Result<Pending, String> {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let pending = setup.pending("pushes").unwrap_or_default();
            let found = pending.iter().find(|p| {
                p.id > after
                    && p.push
                        .as_ref()
                        .is_some_and(|q| q.refs.iter().any(|r| r.name == reference))
            });
            if let Some(p) = found {
                return Ok(p.clone());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "no question about {reference}; pending: {pending:?}"
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    };

    let once = match push_question("refs/heads/main", 0) {
        Ok(p) => p,
        Err(e) => give_up(child, &e),
    };
    let asked = once.push.as_ref().unwrap();
    assert_eq!(asked.remote, "origin");
    assert_eq!(asked.refs.len(), 1);
    assert_eq!(asked.refs[0].old.len(), 40);
    assert_ne!(asked.refs[0].old, asked.refs[0].new);
    let ps = setup.cli(&["ps", "--json"]);
    let listed: serde_json::Value = serde_json::from_slice(&ps.stdout).unwrap();
    assert_eq!(listed[0]["pending"], 1, "{listed}");
    // Every part has said it is ready by now (the guest runs the pushes).
    let events = setup.cli(&["events", "pushes", "--json"]);
    let ready: Vec<String> = String::from_utf8_lossy(&events.stdout)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|e| e["source"] == "run" && e["event"] == "ready")
        .map(|e| e["part"].as_str().unwrap().to_string())
        .collect();
    for part in [
        "supervise",
        "egress",
        "git-gate",
        "gvproxy",
        "frame-filter",
        "qemu",
        "guest",
    ] {
        assert!(
            ready.iter().any(|p| p == part),
            "no ready {part}: {ready:?}"
        );
    }
    let said = setup.cli(&["approve", "pushes", &once.id.to_string()]);
    let said = String::from_utf8_lossy(&said.stdout);
    assert!(
        said.contains("allowed push to origin: refs/heads/main") && said.contains("(once)"),
        "{said}"
    );

    // "Once" did not stick: the next push to main asks again.
    let run = match push_question("refs/heads/main", once.id) {
        Ok(p) => p,
        Err(e) => give_up(child, &e),
    };
    setup.cli(&["approve", "pushes", &run.id.to_string(), "--run"]);
    let denied = match push_question("refs/heads/release", run.id) {
        Ok(p) => p,
        Err(e) => give_up(child, &e),
    };
    setup.cli(&[
        "deny",
        "pushes",
        &denied.id.to_string(),
        "--message",
        "use a claude/ branch",
    ]);
    // `late` is never answered.
    if let Err(e) = push_question("refs/heads/late", denied.id) {
        give_up(child, &e);
    }

    let (stdout, stderr) = finish(child);
    let (followed, _) = finish(follower);
    let stdout = stdout.replace('\r', "");
    let all = format!("stdout:\n{stdout}\nstderr:\n{stderr}");
    assert!(stdout.contains("== end"), "{all}");
    let inside = section(&stdout, "inside");
    assert!(inside.contains("exit=0"), "{inside}\n{all}");
    for label in ["once", "run", "remembered"] {
        assert!(
            section(&stdout, label).contains("exit=0"),
            "{label}:\n{all}"
        );
    }
    // The agent is told while it waits, and only when a person is asked.
    let waiting = "refs/heads/main is outside the push patterns of `origin`; waiting up to 10 s \
                   for a person to allow it (`bottle supervise pushes`)";
    assert!(section(&stdout, "once").contains(waiting), "{all}");
    assert!(!section(&stdout, "remembered").contains("waiting"), "{all}");
    assert!(!inside.contains("waiting"), "{all}");
    let said = section(&stdout, "denied");
    assert!(
        said.contains("exit=1")
            && said.contains("use a claude/ branch")
            && said.contains("a person denied the push to `origin` (refs/heads/release)"),
        "{said}"
    );
    let said = section(&stdout, "late");
    assert!(
        said.contains("exit=1") && said.contains("no person answered within 10 s"),
        "{said}"
    );

    // The upstream has what was allowed, and nothing else.
    let refs = host_git(&upstream, &["for-each-ref", "--format=%(refname)"]);
    let refs: Vec<&str> = refs.lines().collect();
    assert_eq!(
        refs,
        ["refs/heads/claude/in", "refs/heads/main"],
        "upstream refs"
    );
    assert_eq!(
        host_git(&upstream, &["log", "-1", "--format=%s", "main"]),
        "remembered"
    );

    // Four questions, none for the push inside the patterns or the one
    // allowed for the run; the git gate's decisions are events too.
    let events: Vec<serde_json::Value> = followed
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let asked: Vec<String> = events
        .iter()
        .filter(|e| e["source"] == "supervise" && e["event"] == "asked")
        .map(|e| e["refs"][0]["ref"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        asked,
        [
            "refs/heads/main",
            "refs/heads/main",
            "refs/heads/release",
            "refs/heads/late"
        ],
        "{followed}"
    );
    let answered = |event: &str, reference: &str| {
        events.iter().any(|e| {
            e["source"] == "supervise" && e["event"] == event && e["refs"][0]["ref"] == reference
        })
    };
    assert!(answered("denied", "refs/heads/release"), "{followed}");
    assert!(answered("timed-out", "refs/heads/late"), "{followed}");
    let git_pushes: Vec<&serde_json::Value> = events
        .iter()
        .filter(|e| e["source"] == "git" && e["op"] == "push")
        .collect();
    assert_eq!(git_pushes.len(), 6, "{followed}");
    assert_eq!(
        git_pushes
            .iter()
            .filter(|e| e["decision"] == "allow")
            .count(),
        4,
        "{followed}"
    );
}
