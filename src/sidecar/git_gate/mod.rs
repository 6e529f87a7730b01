//! The git gate: the agent's repositories through a host-side gateway that
//! holds the credentials and enforces the push rules.
//!
//! For each remote of the policy the gate keeps a per-run bare mirror in its
//! state directory, fetched from the upstream with the host's credentials
//! (refreshed before every fetch and push the agent makes). The guest speaks
//! git's smart HTTP protocol to `http://proxy.internal:<port>/<remote>.git`,
//! answered by git's own `git http-backend` run as a CGI program
//! ([`cgi`]). Pushes meet the mirror's `pre-receive` hook ([`hook`]): the
//! `bottle` executable itself, which checks every ref against the rules and
//! forwards an accepted push to the upstream before git accepts it, so the
//! agent's push succeeds only once the upstream has it. git's quarantine
//! drops the objects of a refused push. A remote with `push-ask` holds a
//! push to refs outside its patterns while the hook asks the run's broker
//! (`crate::supervise`) through the run's control socket.
//!
//! Not here: reaching the upstream for anything but git (that is the egress
//! proxy's job, and only for declared routes).

mod audit;
pub mod cgi;
pub mod guest;
pub mod hook;
pub mod policy;
pub mod rules;
mod upstream;

pub use policy::{Credentials, Identity, Policy, Remote};

use crate::sidecar::egress::Listener;
use cgi::GateBody;
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use upstream::GitEnv;

/// Where the gate keeps its state and writes its audit.
#[derive(Debug, Clone)]
pub struct GateOptions {
    /// A private directory for the mirrors (in the run directory).
    pub state_dir: PathBuf,
    /// The JSONL audit log.
    pub audit: PathBuf,
    /// The `bottle` executable, installed as each mirror's pre-receive hook.
    pub hook_program: PathBuf,
    /// The run's control socket (`crate::supervise`), which the hook asks
    /// about a push outside the patterns of a remote with `push-ask`.
    pub ask: Option<PathBuf>,
}

/// Environment variables the hook reads (set on the backend it runs under).
pub(crate) const RULES_VAR: &str = "BOTTLE_GIT_GATE_RULES";
pub(crate) const AUDIT_VAR: &str = "BOTTLE_GIT_GATE_AUDIT";
pub(crate) const ASK_VAR: &str = "BOTTLE_GIT_GATE_ASK";

/// A prepared gate: every mirror fetched, ready to serve.
pub struct GitGate {
    options: GateOptions,
    remotes: BTreeMap<String, Mirror>,
}

struct Mirror {
    name: String,
    remote: Remote,
    dir: PathBuf,
    rules: PathBuf,
    env: GitEnv,
    /// Held while the mirror is refreshed or a push is received.
    lock: Arc<tokio::sync::Mutex<()>>,
}

impl GitGate {
    /// Read the credentials, create and fetch every mirror. An upstream that
    /// cannot be fetched stops the run here, before the guest starts.
    pub async fn prepare(policy: &Policy, options: GateOptions) -> miette::Result<GitGate> {
        std::fs::create_dir_all(&options.state_dir).map_err(|e| {
            miette::miette!(
                help = "check that the run directory is writable",
                "cannot create the git gate's directory {}: {e}",
                options.state_dir.display()
            )
        })?;
        let mut remotes = BTreeMap::new();
        for (name, remote) in &policy.remotes {
            let mirror = Mirror {
                name: name.clone(),
                remote: remote.clone(),
                dir: options.state_dir.join(format!("{name}.git")),
                rules: options.state_dir.join(format!("{name}.rules.json")),
                env: GitEnv::for_remote(name, remote, &options.state_dir)?,
                lock: Arc::default(),
            };
            mirror.create(&options.hook_program).await?;
            mirror.refresh().await.map_err(|reason| {
                miette::miette!(
                    help = "check the remote's `url` and `credentials`, and that the upstream is reachable from this host",
                    "the git gate cannot fetch remote `{name}` from {}: {reason}",
                    remote.url
                )
            })?;
            remotes.insert(name.clone(), mirror);
        }
        Ok(GitGate { options, remotes })
    }

    /// The bare mirror of `remote` (for tests and the run's diagnostics).
    pub fn mirror(&self, remote: &str) -> Option<&Path> {
        self.remotes.get(remote).map(|m| m.dir.as_path())
    }

    /// Serve the smart HTTP protocol on `listener` until `shutdown`.
    pub async fn serve_on(
        self: Arc<Self>,
        listener: Listener,
        shutdown: impl Future<Output = ()>,
    ) -> std::io::Result<()> {
        tokio::pin!(shutdown);
        loop {
            let io: Box<dyn Connection> = tokio::select! {
                _ = &mut shutdown => return Ok(()),
                accepted = accept(&listener) => match accepted {
                    Ok(io) => io,
                    Err(e) if transient(&e) => continue,
                    Err(e) => return Err(e),
                },
            };
            let gate = self.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request| {
                    let gate = gate.clone();
                    async move { Ok::<_, std::convert::Infallible>(gate.handle(request).await) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(io), service)
                    .await;
            });
        }
    }

    async fn handle(&self, request: Request<Incoming>) -> Response<GateBody> {
        let path = request.uri().path().to_string();
        let Some((name, rest)) = path.strip_prefix('/').and_then(|p| p.split_once(".git/")) else {
            return cgi::text(StatusCode::NOT_FOUND, self.unknown(&path));
        };
        let Some(mirror) = self.remotes.get(name) else {
            return cgi::text(StatusCode::NOT_FOUND, self.unknown(&path));
        };
        let query_service = request
            .uri()
            .query()
            .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("service=")))
            .map(str::to_string);
        let (service, advertisement) = match (request.method(), rest) {
            (&Method::GET, "info/refs") => match query_service.as_deref() {
                Some(s @ ("git-upload-pack" | "git-receive-pack")) => (s.to_string(), true),
                _ => {
                    return cgi::text(
                        StatusCode::FORBIDDEN,
                        "bottle git gate: only git's smart HTTP protocol is served".into(),
                    )
                }
            },
            (&Method::POST, s @ ("git-upload-pack" | "git-receive-pack")) => (s.to_string(), false),
            _ => return cgi::text(StatusCode::NOT_FOUND, self.unknown(&path)),
        };
        let fetching = service == "git-upload-pack";
        if fetching && mirror.remote.fetch.is_empty() {
            mirror.audit(
                &self.options.audit,
                "deny",
                "fetch is off for this remote",
                vec![],
            );
            return cgi::text(
                StatusCode::FORBIDDEN,
                format!("bottle git gate: the recipe does not allow fetching from `{name}`"),
            );
        }
        let guard = mirror.lock.clone().lock_owned().await;
        if advertisement {
            // Every fetch and push starts from the upstream's current refs.
            if let Err(reason) = mirror.refresh().await {
                let reason = format!("fetching from the upstream failed: {reason}");
                mirror.audit(&self.options.audit, "error", &reason, vec![]);
                return cgi::text(
                    StatusCode::BAD_GATEWAY,
                    format!("bottle git gate: {reason}"),
                );
            }
            if fetching {
                let refs = mirror.refs().await;
                mirror.audit(&self.options.audit, "allow", "", refs);
            }
        }
        let mut command = tokio::process::Command::new("git");
        mirror.env.apply(&mut command);
        command
            .arg("http-backend")
            .env("GIT_PROJECT_ROOT", &self.options.state_dir)
            .env("GIT_HTTP_EXPORT_ALL", "1")
            .env(RULES_VAR, &mirror.rules)
            .env(AUDIT_VAR, &self.options.audit);
        if let (true, Some(socket)) = (mirror.remote.push_ask, &self.options.ask) {
            command.env(ASK_VAR, socket);
        }
        let path_info = format!("/{name}.git/{rest}");
        if service == "git-receive-pack" && !advertisement {
            cgi::serve(command, request, &path_info, guard).await
        } else {
            drop(guard);
            cgi::serve(command, request, &path_info, ()).await
        }
    }

    fn unknown(&self, path: &str) -> String {
        let names: Vec<String> = self.remotes.keys().map(|n| format!("/{n}.git")).collect();
        format!(
            "bottle git gate: no remote at {path}; this bottle's remotes are {}",
            names.join(", ")
        )
    }
}

impl Mirror {
    fn git(&self) -> tokio::process::Command {
        let mut command = tokio::process::Command::new("git");
        self.env.apply(&mut command);
        command.current_dir(&self.dir).kill_on_drop(true);
        command
    }

    async fn run(&self, args: &[&str]) -> Result<String, String> {
        let output = self
            .git()
            .args(args)
            .output()
            .await
            .map_err(|e| format!("cannot run git: {e}"))?;
        if output.status.success() {
            Ok(String::from_utf8_lossy(&output.stdout).into_owned())
        } else {
            let stderr = String::from_utf8_lossy(&output.stderr);
            let last = stderr.lines().rev().find(|l| !l.trim().is_empty());
            Err(last.unwrap_or("git failed").trim().to_string())
        }
    }

    async fn create(&self, hook_program: &Path) -> miette::Result<()> {
        let failed = |what: &str, e: String| {
            miette::miette!(
                help = "check that git is installed on the host (`git --version`)",
                "the git gate cannot {what} for remote `{}`: {e}",
                self.name
            )
        };
        let _ = std::fs::remove_dir_all(&self.dir);
        std::fs::create_dir_all(&self.dir)
            .map_err(|e| failed("create the mirror", e.to_string()))?;
        self.run(&["init", "--bare", "--quiet"])
            .await
            .map_err(|e| failed("create the mirror", e))?;
        for (key, value) in [
            ("http.receivepack", "true"),
            ("receive.denyDeletes", "false"),
            ("receive.denyNonFastForwards", "false"),
            ("gc.auto", "0"),
            // Malformed objects stop here, not at the upstream.
            ("receive.fsckObjects", "true"),
        ] {
            self.run(&["config", key, value])
                .await
                .map_err(|e| failed("configure the mirror", e))?;
        }
        let rules = serde_json::to_vec(&(&self.name, &self.remote)).expect("rules are plain data");
        std::fs::write(&self.rules, rules)
            .map_err(|e| failed("write the push rules", e.to_string()))?;
        let hook = self.dir.join("hooks").join("pre-receive");
        let _ = std::fs::remove_file(&hook);
        std::os::unix::fs::symlink(hook_program, &hook)
            .map_err(|e| failed("install the pre-receive hook", e.to_string()))?;
        let head = match &self.remote.checkout {
            Some(branch) => format!("refs/heads/{branch}"),
            None => {
                let out = self
                    .run(&["ls-remote", "--symref", &self.remote.url, "HEAD"])
                    .await
                    .map_err(|e| {
                        miette::miette!(
                            help = "check the remote's `url` and `credentials`, and that the upstream is reachable from this host",
                            "the git gate cannot reach remote `{}` at {}: {e}",
                            self.name,
                            self.remote.url
                        )
                    })?;
                out.lines()
                    .find_map(|l| l.strip_prefix("ref: "))
                    .and_then(|l| l.split_whitespace().next())
                    .unwrap_or("refs/heads/main")
                    .to_string()
            }
        };
        self.run(&["symbolic-ref", "HEAD", &head])
            .await
            .map_err(|e| failed("set the mirror's HEAD", e))?;
        Ok(())
    }

    /// Bring the mirror's refs (those of the `fetch` patterns) to the upstream's.
    async fn refresh(&self) -> Result<(), String> {
        if self.remote.fetch.is_empty() {
            return Ok(());
        }
        let mut args = vec![
            "fetch".to_string(),
            "--quiet".into(),
            "--prune".into(),
            "--no-write-fetch-head".into(),
            // Tags only through a `refs/tags/…` pattern, not followed along.
            "--no-tags".into(),
            self.remote.url.clone(),
        ];
        args.extend(self.remote.fetch.iter().map(|p| format!("+{p}:{p}")));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.run(&args).await.map(drop)
    }

    async fn refs(&self) -> Vec<audit::RefEntry> {
        let out = self
            .run(&["for-each-ref", "--format=%(refname) %(objectname)"])
            .await
            .unwrap_or_default();
        out.lines()
            .filter_map(|l| l.split_once(' '))
            .map(|(name, id)| audit::RefEntry {
                name: name.into(),
                old: None,
                new: id.into(),
                decision: None,
                reason: None,
            })
            .collect()
    }

    fn audit(&self, path: &Path, decision: &str, reason: &str, refs: Vec<audit::RefEntry>) {
        let _ = audit::append(
            path,
            &audit::Entry {
                time: audit::now(),
                remote: &self.name,
                op: "fetch",
                decision,
                reason: reason.into(),
                refs,
            },
        );
    }
}

trait Connection: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Connection for T {}

async fn accept(listener: &Listener) -> std::io::Result<Box<dyn Connection>> {
    Ok(match listener {
        Listener::Tcp(l) => Box::new(l.accept().await?.0),
        Listener::Unix(l, _) => Box::new(l.accept().await?.0),
    })
}

fn transient(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionAborted | ConnectionReset | Interrupted | WouldBlock
    )
}
