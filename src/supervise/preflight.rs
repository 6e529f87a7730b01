//! The preflight: what a run is about to do, in one screen, from the stored
//! bottle alone (its [`Plan`] and its egress policy, never the recipe).
//! `bottle run` shows it on a terminal and asks y/N before anything starts;
//! `bottle run --dry-run` prints it (`--json` as data) and starts nothing.
use crate::lower::bottle::ManifestImage;
use crate::realize::{Plan, SidecarKind};
use crate::sidecar::egress::Policy;
use serde::Serialize;
use std::collections::BTreeMap;

/// The plan as a person reviews it.
#[derive(Debug, Serialize)]
pub struct Preflight {
    pub name: String,
    pub command: Vec<String>,
    pub user: String,
    pub workdir: String,
    pub image: String,
    pub cpus: u32,
    pub memory_mib: u32,
    /// Sidecar name → port on `proxy.internal`.
    pub sidecars: BTreeMap<String, u16>,
    /// Host pattern → what its routes allow.
    pub routes: BTreeMap<String, Vec<RouteView>>,
    /// `NAME=VALUE`, or `NAME` alone when the name looks like a credential.
    pub env: Vec<String>,
    /// Secret name → where the host reads it and which headers carry it.
    pub secrets: BTreeMap<String, String>,
    /// Requests no route allows wait for a person (`egress.default = "ask"`).
    pub ask_undeclared: bool,
    /// Git remote name → its URL and the refs the agent may fetch and push.
    pub git: BTreeMap<String, GitView>,
    /// Paths of the files the bottle places in the guest.
    pub files: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct GitView {
    pub url: String,
    pub fetch: Vec<String>,
    pub push: Vec<String>,
    /// A push to another ref asks a person (`push-ask`).
    pub push_ask: bool,
}

#[derive(Debug, Serialize)]
pub struct RouteView {
    pub ports: Vec<u16>,
    pub inspect: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub methods: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paths: Option<Vec<String>>,
    /// Header names the proxy adds from secrets.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<String>,
    /// Each new connection waits for a person.
    pub approve: bool,
}

/// Words in an environment variable's name that keep its value off the screen.
const SECRET_WORDS: &[&str] = &["KEY", "TOKEN", "SECRET", "PASSWORD", "PASSWD", "CREDENTIAL"];

impl Preflight {
    /// The preflight of `plan`, whose manifest places `files` in the guest.
    pub fn of(plan: &Plan, files: Vec<String>) -> miette::Result<Preflight> {
        let mut routes: BTreeMap<String, Vec<RouteView>> = BTreeMap::new();
        let mut secrets = BTreeMap::new();
        let mut ask_undeclared = false;
        let mut git = BTreeMap::new();
        for sidecar in &plan.sidecars {
            let policy = match &sidecar.kind {
                SidecarKind::Egress { policy } => policy,
                SidecarKind::GitGate { gate, .. } => {
                    for (name, remote) in &gate.remotes {
                        git.insert(
                            name.clone(),
                            GitView {
                                url: remote.url.clone(),
                                fetch: remote.fetch.clone(),
                                push: remote.push.clone(),
                                push_ask: remote.push_ask,
                            },
                        );
                    }
                    continue;
                }
            };
            let policy = Policy::load(policy)?;
            ask_undeclared |= policy.default == crate::sidecar::egress::policy::Unmatched::Ask;
            for route in &policy.routes {
                routes
                    .entry(route.host.clone())
                    .or_default()
                    .push(RouteView {
                        ports: route.ports.clone(),
                        inspect: route.inspect,
                        methods: route.methods.clone(),
                        paths: route.paths.clone(),
                        headers: route.headers.iter().map(|h| h.name.clone()).collect(),
                        approve: route.approve,
                    });
            }
            for (name, source) in &policy.secrets {
                let from = match (&source.env, &source.file) {
                    (Some(env), _) => format!("host env {env}"),
                    (_, Some(file)) => format!("host file {}", file.display()),
                    _ => "nowhere".into(),
                };
                let carried: Vec<String> = policy
                    .routes
                    .iter()
                    .flat_map(|r| {
                        r.headers
                            .iter()
                            .filter(|h| &h.secret == name)
                            .map(move |h| format!("{} to {}", h.name, r.host))
                    })
                    .collect();
                let carried = if carried.is_empty() {
                    String::new()
                } else {
                    format!(", sent as {}", carried.join(", "))
                };
                secrets.insert(name.clone(), format!("{from}{carried}"));
            }
        }
        let env = plan
            .env
            .iter()
            .map(|kv| {
                let (name, _) = kv.split_once('=').unwrap_or((kv, ""));
                let upper = name.to_ascii_uppercase();
                if SECRET_WORDS.iter().any(|w| upper.contains(w)) {
                    format!("{name} (value hidden)")
                } else {
                    kv.clone()
                }
            })
            .collect();
        Ok(Preflight {
            name: plan.name.clone(),
            command: plan.command.clone(),
            user: plan.user.clone(),
            workdir: plan.workdir.clone(),
            image: match &plan.image {
                ManifestImage::Busybox => {
                    "busybox (assembled from the host's static busybox)".into()
                }
                ManifestImage::Oci(reference) => reference.clone(),
                ManifestImage::Root(name) => format!("root image {name}"),
            },
            cpus: plan.cpus,
            memory_mib: plan.memory_mib,
            sidecars: plan
                .sidecars
                .iter()
                .map(|s| (s.name.clone(), s.guest_port))
                .collect(),
            routes,
            env,
            secrets,
            ask_undeclared,
            git,
            files,
        })
    }

    /// Does any route hold connections for a person?
    pub fn asks(&self) -> bool {
        self.ask_undeclared || self.routes.values().flatten().any(|r| r.approve)
    }

    /// The compact text a person reads before saying y or N.
    pub fn text(&self) -> String {
        let mut out = String::new();
        let mut line = |label: &str, value: String| {
            out.push_str(&format!("  {label:<9} {value}\n"));
        };
        let as_user = match (self.user.as_str(), self.workdir.as_str()) {
            ("", "") => String::new(),
            (u, "") => format!("  (as {u})"),
            ("", w) => format!("  (in {w})"),
            (u, w) => format!("  (as {u} in {w})"),
        };
        line("agent", format!("{}{as_user}", shell_words(&self.command)));
        line("image", self.image.clone());
        line(
            "machine",
            format!("{} cpus, {} MiB", self.cpus, self.memory_mib),
        );
        let sidecars: Vec<String> = self
            .sidecars
            .iter()
            .map(|(name, port)| format!("{name} (proxy.internal:{port})"))
            .collect();
        line("sidecars", list_or_none(&sidecars));
        if self.routes.is_empty() && !self.ask_undeclared {
            line("network", "no routes: every request out is refused".into());
        }
        let mut first = true;
        for (host, views) in &self.routes {
            for view in views {
                let label = if first { "routes" } else { "" };
                first = false;
                let ports: Vec<String> = view.ports.iter().map(u16::to_string).collect();
                let mut text = format!("{host} :{}", ports.join(","));
                if view.inspect {
                    text.push_str(" inspected");
                }
                if let Some(methods) = &view.methods {
                    text.push_str(&format!(" {}", methods.join(",")));
                }
                if let Some(paths) = &view.paths {
                    text.push_str(&format!(" {}", paths.join(" ")));
                }
                if !view.headers.is_empty() {
                    text.push_str(&format!(" +headers {}", view.headers.join(",")));
                }
                if view.approve {
                    text.push_str("  [asks a person]");
                }
                line(label, text);
            }
        }
        if self.ask_undeclared {
            let label = if first { "routes" } else { "" };
            line(label, "any other host:port  [asks a person]".into());
        }
        line("env", list_or_none(&self.env));
        let secrets: Vec<String> = self
            .secrets
            .iter()
            .map(|(name, from)| format!("{name} ({from})"))
            .collect();
        line("secrets", list_or_none(&secrets));
        let remotes: Vec<String> = self
            .git
            .iter()
            .map(|(name, r)| {
                let refs = |what: &str, patterns: &[String]| match patterns {
                    [] => format!("no {what}"),
                    p => format!("{what} {}", p.join(" ")),
                };
                format!(
                    "{name} {} ({}; {}){}",
                    r.url,
                    refs("fetch", &r.fetch),
                    refs("push", &r.push),
                    if r.push_ask {
                        "  [other pushes ask a person]"
                    } else {
                        ""
                    }
                )
            })
            .collect();
        if !remotes.is_empty() {
            line("git", remotes.join(", "));
        }
        line("files", list_or_none(&self.files));
        out
    }
}

fn list_or_none(items: &[String]) -> String {
    if items.is_empty() {
        "none".into()
    } else {
        items.join(", ")
    }
}

/// The command as a person would type it.
fn shell_words(words: &[String]) -> String {
    words
        .iter()
        .map(|w| {
            if !w.is_empty()
                && w.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./=:,@%+".contains(c))
            {
                w.clone()
            } else {
                format!("'{}'", w.replace('\'', "'\\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Ask y/N on the terminal (stderr, stdin); true only for an explicit yes.
pub fn confirm(preflight: &Preflight) -> bool {
    use std::io::{BufRead, Write};
    let mut err = std::io::stderr();
    let _ = write!(
        err,
        "bottle: about to run `{}`:\n{}Start it? [y/N] ",
        preflight.name,
        preflight.text()
    );
    let _ = err.flush();
    let mut answer = String::new();
    if std::io::stdin().lock().read_line(&mut answer).is_err() {
        return false;
    }
    matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes")
}
