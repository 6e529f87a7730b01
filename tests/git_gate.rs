//! The git gate with real git: an upstream served by `git http-backend`
//! behind a test server that demands basic auth (so a clone proves the gate
//! sent the credential), and a repository on the host as the upstream.
//! Host-only tests drive the gate with the host's git; the VM test runs the
//! same from inside a real guest.

use bottle::schema::SecretRef;
use bottle::sidecar::egress::{Listen, Listener};
use bottle::sidecar::git_gate::{cgi, Credentials, GateOptions, GitGate, Identity, Policy, Remote};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

const USER: &str = "gate-user";
const TOKEN: &str = "tok-7f3a9c1e-not-for-the-guest";
const TOKEN_VAR: &str = "BOTTLE_TEST_GIT_GATE_TOKEN";

/// Run `git` with no user or system configuration and no proxy.
fn git(dir: &Path, args: &[&str]) -> Output {
    Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_AUTHOR_NAME", "Test")
        .env("GIT_AUTHOR_EMAIL", "test@example.com")
        .env("GIT_COMMITTER_NAME", "Test")
        .env("GIT_COMMITTER_EMAIL", "test@example.com")
        .env_remove("http_proxy")
        .env_remove("HTTP_PROXY")
        .env_remove("https_proxy")
        .env_remove("HTTPS_PROXY")
        .env_remove("ALL_PROXY")
        .env_remove(TOKEN_VAR)
        .output()
        .expect("git runs")
}

fn ok(dir: &Path, args: &[&str]) -> String {
    let out = git(dir, args);
    assert!(
        out.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn fails(dir: &Path, args: &[&str]) -> String {
    let out = git(dir, args);
    let said = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "git {args:?} should fail: {said}");
    said
}

/// A bare upstream at `<root>/upstream.git` with `main` holding two commits.
fn upstream(root: &Path) -> PathBuf {
    let bare = root.join("upstream.git");
    ok(
        root,
        &[
            "init",
            "--quiet",
            "--bare",
            "-b",
            "main",
            bare.to_str().unwrap(),
        ],
    );
    let seed = root.join("seed");
    ok(
        root,
        &["init", "--quiet", "-b", "main", seed.to_str().unwrap()],
    );
    for n in 1..=2 {
        std::fs::write(seed.join("README"), format!("version {n}\n")).unwrap();
        ok(&seed, &["add", "README"]);
        ok(&seed, &["commit", "--quiet", "-m", &format!("commit {n}")]);
    }
    ok(&seed, &["push", "--quiet", bare.to_str().unwrap(), "main"]);
    bare
}

/// Run `future` on a runtime of its own thread, for the test's lifetime.
fn background<F: std::future::Future<Output = ()> + Send + 'static>(future: F) {
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
            .block_on(future)
    });
}

/// `git http-backend` for the repositories under `root`, on a loopback port,
/// answering only requests with `USER:TOKEN` basic auth.
fn auth_server(root: &Path) -> SocketAddr {
    let root = root.to_path_buf();
    let (tx, rx) = std::sync::mpsc::channel();
    background(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        tx.send(listener.local_addr().unwrap()).unwrap();
        let expected = format!("Basic {}", base64(format!("{USER}:{TOKEN}").as_bytes()));
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let (root, expected) = (root.clone(), expected.clone());
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request: hyper::Request<_>| {
                    let (root, expected) = (root.clone(), expected.clone());
                    async move {
                        let authorized = request
                            .headers()
                            .get("authorization")
                            .is_some_and(|v| v.as_bytes() == expected.as_bytes());
                        if !authorized {
                            let mut response = cgi::text(
                                hyper::StatusCode::UNAUTHORIZED,
                                "credentials required".into(),
                            );
                            response.headers_mut().insert(
                                "www-authenticate",
                                "Basic realm=\"test\"".parse().unwrap(),
                            );
                            return Ok::<_, std::convert::Infallible>(response);
                        }
                        let mut command = tokio::process::Command::new("git");
                        command
                            .arg("http-backend")
                            .env_clear()
                            .env("PATH", std::env::var("PATH").unwrap())
                            .env("GIT_CONFIG_NOSYSTEM", "1")
                            .env("GIT_CONFIG_GLOBAL", "/dev/null")
                            .env("GIT_PROJECT_ROOT", &root)
                            .env("GIT_HTTP_EXPORT_ALL", "1");
                        let path = request.uri().path().to_string();
                        Ok(cgi::serve(command, request, &path, ()).await)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    rx.recv().unwrap()
}

fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for c in bytes.chunks(3) {
        let b = [c[0], *c.get(1).unwrap_or(&0), *c.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            out.push(if i <= c.len() {
                A[(n >> (18 - 6 * i) & 63) as usize] as char
            } else {
                '='
            });
        }
    }
    out
}

fn remote(url: &str) -> Remote {
    Remote {
        url: url.into(),
        fetch: true,
        push: vec!["refs/heads/claude/*".into()],
        force: false,
        delete: false,
        checkout: None,
        credentials: None,
    }
}

struct Gate {
    url: String,
    audit: PathBuf,
    state: PathBuf,
}

/// A gate for `remotes`, serving on a loopback port.
fn gate(root: &Path, remotes: BTreeMap<String, Remote>) -> Gate {
    let policy = Policy {
        version: 1,
        bottle: "t".into(),
        user: Identity {
            name: "Agent".into(),
            email: "agent@example.com".into(),
        },
        remotes,
    };
    let options = GateOptions {
        state_dir: root.join("gate"),
        audit: root.join("git-gate-audit.jsonl"),
        hook_program: PathBuf::from(env!("CARGO_BIN_EXE_bottle")),
    };
    let (audit, state) = (options.audit.clone(), options.state_dir.clone());
    let (tx, rx) = std::sync::mpsc::channel();
    background(async move {
        let gate = match GitGate::prepare(&policy, options).await {
            Ok(gate) => gate,
            Err(e) => {
                tx.send(Err(format!("{e:?}"))).unwrap();
                return;
            }
        };
        let listener = Listener::bind(&Listen::Tcp(([127, 0, 0, 1], 0).into()))
            .await
            .unwrap();
        tx.send(Ok(listener.local().to_string())).unwrap();
        Arc::new(gate)
            .serve_on(listener, std::future::pending())
            .await
            .unwrap();
    });
    let address = rx.recv().unwrap().expect("the gate starts");
    Gate {
        url: format!("http://{address}"),
        audit,
        state,
    }
}

/// Every file under `dir`, as bytes.
fn contains_anywhere(dir: &Path, needle: &[u8]) -> Option<PathBuf> {
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        let meta = std::fs::symlink_metadata(&path).ok()?;
        if meta.is_dir() {
            if let Some(found) = contains_anywhere(&path, needle) {
                return Some(found);
            }
        } else if meta.is_file() {
            let bytes = std::fs::read(&path).unwrap_or_default();
            if bytes.windows(needle.len()).any(|w| w == needle) {
                return Some(path);
            }
        }
    }
    None
}

#[test]
fn an_https_style_upstream_with_basic_auth_through_the_gate() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let bare = upstream(root);
    let server = auth_server(root);
    let upstream_url = format!("http://{server}/upstream.git");
    // The upstream really demands the credential.
    let said = fails(root, &["ls-remote", &upstream_url]);
    assert!(said.contains("Username") || said.contains("401"), "{said}");

    std::env::set_var(TOKEN_VAR, TOKEN);
    let mut origin = remote(&upstream_url);
    origin.credentials = Some(Credentials {
        username: USER.into(),
        secret: SecretRef::Env(TOKEN_VAR.into()),
    });
    let gate = gate(root, BTreeMap::from([("origin".to_string(), origin)]));

    let work = root.join("work");
    ok(
        root,
        &[
            "clone",
            "--quiet",
            &format!("{}/origin.git", gate.url),
            work.to_str().unwrap(),
        ],
    );
    assert_eq!(
        std::fs::read_to_string(work.join("README")).unwrap(),
        "version 2\n"
    );

    // An allowed ref lands upstream, and only after the upstream has it does the push succeed.
    std::fs::write(work.join("NEW"), "agent work\n").unwrap();
    ok(&work, &["add", "NEW"]);
    ok(&work, &["commit", "--quiet", "-m", "agent work"]);
    let head = ok(&work, &["rev-parse", "HEAD"]);
    ok(
        &work,
        &["push", "--quiet", "origin", "HEAD:refs/heads/claude/one"],
    );
    assert_eq!(ok(&bare, &["rev-parse", "refs/heads/claude/one"]), head);

    let before = ok(&bare, &["for-each-ref"]);
    // A ref outside the patterns.
    std::fs::write(work.join("NEW"), "more\n").unwrap();
    ok(&work, &["commit", "--quiet", "-am", "more"]);
    let rejected = ok(&work, &["rev-parse", "HEAD"]);
    let said = fails(&work, &["push", "origin", "HEAD:refs/heads/main"]);
    assert!(said.contains("refs/heads/main refused: not allowed by the recipe's push patterns (refs/heads/claude/*)"), "{said}");
    // A delete.
    let said = fails(&work, &["push", "origin", ":refs/heads/claude/one"]);
    assert!(
        said.contains("refs/heads/claude/one refused: deleting a ref is not allowed"),
        "{said}"
    );
    // A force push.
    ok(&work, &["reset", "--quiet", "--hard", "HEAD~2"]);
    std::fs::write(work.join("OTHER"), "rewritten\n").unwrap();
    ok(&work, &["add", "OTHER"]);
    ok(&work, &["commit", "--quiet", "-m", "rewritten"]);
    let said = fails(
        &work,
        &["push", "--force", "origin", "HEAD:refs/heads/claude/one"],
    );
    assert!(
        said.contains("refs/heads/claude/one refused: not a fast-forward"),
        "{said}"
    );

    // The upstream is unchanged and the refused objects did not stay in the mirror.
    assert_eq!(ok(&bare, &["for-each-ref"]), before);
    let mirror = gate.state.join("origin.git");
    assert!(!git(&mirror, &["cat-file", "-e", &rejected])
        .status
        .success());
    assert!(!git(&bare, &["cat-file", "-e", &rejected]).status.success());

    // Every fetch and push is audited, and the credential is nowhere on disk.
    let audit = std::fs::read_to_string(&gate.audit).unwrap();
    let lines: Vec<serde_json::Value> = audit
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let pushes: Vec<_> = lines.iter().filter(|l| l["op"] == "push").collect();
    assert_eq!(pushes.len(), 4, "{audit}");
    assert_eq!(pushes[0]["decision"], "allow");
    assert_eq!(pushes[0]["refs"][0]["ref"], "refs/heads/claude/one");
    assert_eq!(pushes[0]["refs"][0]["new"], head.as_str());
    assert!(
        pushes[1..].iter().all(|p| p["decision"] == "deny"),
        "{audit}"
    );
    assert!(lines
        .iter()
        .any(|l| l["op"] == "fetch" && l["decision"] == "allow"));
    let encoded = base64(format!("{USER}:{TOKEN}").as_bytes());
    for needle in [TOKEN.as_bytes(), encoded.as_bytes()] {
        assert_eq!(
            contains_anywhere(root, needle),
            None,
            "the credential was written to disk"
        );
    }
}

#[test]
fn a_repository_on_the_host_is_the_upstream() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    // The user's project: a working repository with `main` checked out.
    let project = root.join("project");
    ok(
        root,
        &["init", "--quiet", "-b", "main", project.to_str().unwrap()],
    );
    std::fs::write(project.join("README"), "mine\n").unwrap();
    ok(&project, &["add", "README"]);
    ok(&project, &["commit", "--quiet", "-m", "start"]);
    // The project refuses one branch itself, so the test sees an upstream refusal.
    let hook = project.join(".git/hooks/pre-receive");
    std::fs::write(
        &hook,
        "#!/bin/sh\nwhile read old new ref; do\n  case $ref in refs/heads/claude/no) echo \"upstream policy: claude/no is reserved\" >&2; exit 1;; esac\ndone\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();

    let gate = gate(
        root,
        BTreeMap::from([("origin".to_string(), remote(project.to_str().unwrap()))]),
    );
    let work = root.join("work");
    ok(
        root,
        &[
            "clone",
            "--quiet",
            &format!("{}/origin.git", gate.url),
            work.to_str().unwrap(),
        ],
    );
    std::fs::write(work.join("README"), "agent's\n").unwrap();
    ok(&work, &["commit", "--quiet", "-am", "agent's change"]);
    let head = ok(&work, &["rev-parse", "HEAD"]);
    ok(
        &work,
        &["push", "--quiet", "origin", "HEAD:refs/heads/claude/fix"],
    );
    // The user reviews it in their own repository.
    assert_eq!(ok(&project, &["rev-parse", "claude/fix"]), head);
    assert_eq!(
        ok(&project, &["log", "-1", "--format=%s", "claude/fix"]),
        "agent's change"
    );

    // The upstream's own refusal fails the agent's push, with its message.
    let said = fails(&work, &["push", "origin", "HEAD:refs/heads/claude/no"]);
    assert!(
        said.contains("upstream policy: claude/no is reserved"),
        "{said}"
    );
    assert!(!git(
        &project,
        &["rev-parse", "--verify", "--quiet", "refs/heads/claude/no"]
    )
    .status
    .success());
    assert!(!git(
        &gate.state.join("origin.git"),
        &["rev-parse", "--verify", "--quiet", "refs/heads/claude/no"]
    )
    .status
    .success());
    let audit = std::fs::read_to_string(&gate.audit).unwrap();
    assert!(
        audit.lines().any(|l| l.contains("\"upstream-refused\"")),
        "{audit}"
    );

    // Commits made upstream meanwhile reach the agent's next fetch.
    std::fs::write(project.join("README"), "mine, later\n").unwrap();
    ok(&project, &["commit", "--quiet", "-am", "later"]);
    ok(&work, &["fetch", "--quiet", "origin"]);
    assert_eq!(
        ok(&work, &["log", "-1", "--format=%s", "origin/main"]),
        "later"
    );
}

#[test]
fn a_remote_without_fetch_and_unknown_paths_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let bare = upstream(root);
    let mut closed = remote(bare.to_str().unwrap());
    closed.fetch = false;
    let gate = gate(root, BTreeMap::from([("closed".to_string(), closed)]));
    let said = fails(root, &["ls-remote", &format!("{}/closed.git", gate.url)]);
    assert!(said.contains("403"), "{said}");
    let said = fails(root, &["ls-remote", &format!("{}/other.git", gate.url)]);
    assert!(said.contains("not found") || said.contains("404"), "{said}");
}
