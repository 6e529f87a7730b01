//! The approval broker: the [`Approver`] a run hands its egress proxy.
//! Requests for the same host and port wait on one question; an answer
//! releases every request waiting on it; no answer within the timeout is a
//! denial. "For this run" and "always" are remembered for the run's life;
//! "always" also writes the route into the recipe's `approved.bottle`.
use crate::sidecar::egress::approval::{Answer, Approver, Question};
use crate::sidecar::egress::policy::Route;
use serde::Serialize;
use std::collections::HashSet;
use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::{oneshot, watch};

/// How long a request waits for a person by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

/// A person's decision on a question.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Let the requests waiting now through; ask again next time.
    Once,
    /// Let every request to this host and port through for the rest of the run.
    Run,
    /// As `Run`, and write the route into the recipe's `approved.bottle`.
    Always,
    Deny,
}

impl Verdict {
    pub fn parse(text: &str) -> Option<Verdict> {
        Some(match text {
            "once" => Verdict::Once,
            "run" => Verdict::Run,
            "always" => Verdict::Always,
            "deny" => Verdict::Deny,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Once => "once",
            Verdict::Run => "run",
            Verdict::Always => "always",
            Verdict::Deny => "deny",
        }
    }
}

/// A question waiting for a person, as `bottle supervise` shows it.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct Pending {
    pub id: u64,
    pub host: String,
    pub port: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    pub rule: String,
    /// The asking route's index in the policy.
    #[serde(default)]
    pub route: usize,
    /// Seconds since the epoch when it was first asked.
    pub asked: u64,
    /// Requests waiting on it.
    pub waiting: usize,
}

struct Held {
    pending: Pending,
    waiters: Vec<oneshot::Sender<Answer>>,
}

#[derive(Default)]
struct State {
    next_id: u64,
    held: Vec<Held>,
    /// host:port allowed for the rest of the run.
    allowed: HashSet<(String, u16)>,
}

/// The run's approvals.
pub struct Broker {
    /// The run's name, for the commands a refusal suggests.
    run: String,
    timeout: Duration,
    state: Mutex<State>,
    /// Bumped on every change to the pending questions.
    changed: watch::Sender<u64>,
    events: Option<PathBuf>,
    /// Where "always" writes routes (`approved.bottle` beside the recipe).
    approved_file: Option<PathBuf>,
    /// The policy's routes, which "always" copies (without `approve`).
    routes: Vec<Route>,
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broker")
            .field("run", &self.run)
            .finish_non_exhaustive()
    }
}

impl Broker {
    pub fn new(
        run: &str,
        timeout: Duration,
        events: Option<PathBuf>,
        approved_file: Option<PathBuf>,
        routes: Vec<Route>,
    ) -> Broker {
        Broker {
            run: run.to_string(),
            timeout,
            state: Mutex::new(State {
                next_id: 1,
                ..State::default()
            }),
            changed: watch::channel(0).0,
            events,
            approved_file,
            routes,
        }
    }

    /// The questions waiting for a person, oldest first.
    pub fn pending(&self) -> Vec<Pending> {
        let state = self.state.lock().expect("broker lock");
        state.held.iter().map(|h| h.pending.clone()).collect()
    }

    /// Notified whenever the pending questions change.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// Answer question `id`; what was answered, or why it cannot be.
    pub fn decide(
        &self,
        id: u64,
        verdict: Verdict,
        message: Option<&str>,
    ) -> Result<Pending, String> {
        if verdict == Verdict::Always && self.approved_file.is_none() {
            return Err(
                "this run was started from a built bottle, so there is no recipe to \
                        write the route into; answer `--run`, and add the route to the recipe"
                    .into(),
            );
        }
        let held = {
            let mut state = self.state.lock().expect("broker lock");
            let at = state
                .held
                .iter()
                .position(|h| h.pending.id == id)
                .ok_or_else(|| format!("no pending request {id} (it may have timed out)"))?;
            let held = state.held.remove(at);
            if matches!(verdict, Verdict::Run | Verdict::Always) {
                state
                    .allowed
                    .insert((held.pending.host.clone(), held.pending.port));
            }
            held
        };
        self.changed.send_modify(|n| *n += 1);
        let p = &held.pending;
        if verdict == Verdict::Always {
            if let Some(file) = &self.approved_file {
                // An undeclared host (`default: ask`) gets a plain route.
                let plain = Route {
                    host: p.host.clone(),
                    ports: vec![p.port],
                    inspect: false,
                    methods: None,
                    paths: None,
                    headers: Vec::new(),
                    addresses: Vec::new(),
                    approve: false,
                };
                let route = self.routes.get(p.route).unwrap_or(&plain);
                let written = append_route(file, route, &p.host, p.port);
                if let Err(e) = written {
                    self.event("write-failed", p, Some(&e));
                }
            }
        }
        let answer = match verdict {
            Verdict::Deny => Answer::Deny(self.denial(p, message)),
            _ => Answer::Allow,
        };
        self.event(
            if verdict == Verdict::Deny {
                "denied"
            } else {
                "allowed"
            },
            p,
            Some(verdict.as_str()),
        );
        for waiter in held.waiters {
            let _ = waiter.send(answer.clone());
        }
        Ok(held.pending)
    }

    /// What a refused agent reads: who refused, and what would let it through.
    fn denial(&self, p: &Pending, message: Option<&str>) -> String {
        let said = match message {
            Some(m) if !m.trim().is_empty() => format!(": \"{}\"", m.trim()),
            _ => String::new(),
        };
        format!(
            "a person denied {}:{}{said}. It can be reached only if a person allows it \
             when it is asked again (`bottle supervise {}`) or adds a route for host \
             \"{}\" port {} to the bottle's recipe",
            p.host, p.port, self.run, p.host, p.port
        )
    }

    async fn wait(&self, q: Question) -> Answer {
        let (tx, rx) = oneshot::channel();
        let id = {
            let mut state = self.state.lock().expect("broker lock");
            if state.allowed.contains(&(q.host.clone(), q.port)) {
                return Answer::Allow;
            }
            match state
                .held
                .iter_mut()
                .find(|h| h.pending.host == q.host && h.pending.port == q.port)
            {
                Some(held) => {
                    held.waiters.push(tx);
                    held.pending.waiting = held.waiters.len();
                    None
                }
                None => {
                    let id = state.next_id;
                    state.next_id += 1;
                    let pending = Pending {
                        id,
                        host: q.host.clone(),
                        port: q.port,
                        method: q.method.clone(),
                        path: q.path.clone(),
                        rule: q.rule.clone(),
                        route: q.route,
                        asked: now(),
                        waiting: 1,
                    };
                    state.held.push(Held {
                        pending: pending.clone(),
                        waiters: vec![tx],
                    });
                    Some(pending)
                }
            }
        };
        if let Some(p) = &id {
            self.event("asked", p, None);
        }
        self.changed.send_modify(|n| *n += 1);
        match tokio::time::timeout(self.timeout, rx).await {
            Ok(Ok(answer)) => answer,
            _ => {
                // No answer: forget the question once no request waits on it.
                let expired = {
                    let mut state = self.state.lock().expect("broker lock");
                    let at = state
                        .held
                        .iter()
                        .position(|h| h.pending.host == q.host && h.pending.port == q.port);
                    at.and_then(|at| {
                        let held = &mut state.held[at];
                        held.waiters.retain(|w| !w.is_closed());
                        held.pending.waiting = held.waiters.len();
                        held.waiters
                            .is_empty()
                            .then(|| state.held.remove(at).pending)
                    })
                };
                if let Some(p) = &expired {
                    self.event("timed-out", p, None);
                }
                self.changed.send_modify(|n| *n += 1);
                Answer::Deny(format!(
                    "no person answered within {} s whether {}:{} may be reached. It can be \
                     reached only if a person allows it when it is asked (`bottle supervise {}`) \
                     or adds a route for host \"{}\" port {} to the bottle's recipe",
                    self.timeout.as_secs(),
                    q.host,
                    q.port,
                    self.run,
                    q.host,
                    q.port
                ))
            }
        }
    }

    fn event(&self, event: &str, p: &Pending, answer: Option<&str>) {
        use std::io::Write;
        let Some(path) = &self.events else { return };
        let line = serde_json::json!({
            "time": now(),
            "source": "supervise",
            "event": event,
            "id": p.id,
            "host": p.host,
            "port": p.port,
            "answer": answer,
        });
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            let _ = writeln!(f, "{line}");
        }
    }
}

impl Approver for Broker {
    fn ask(&self, question: Question) -> Pin<Box<dyn Future<Output = Answer> + Send + '_>> {
        Box::pin(self.wait(question))
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The header of a new `approved.bottle`.
const APPROVED_HEADER: &str =
    "# Routes a person allowed \"always\" (`bottle supervise`, `bottle approve --always`).\n\
# bottle appends to this list; review it like any change to the recipe, which imports it:\n\
#   egress.routes = import ./approved.bottle ++ [ ... ];\n";

/// Add to the list in `file` (created if missing) a copy of `route` for
/// `host:port` alone, without `approve`.
pub fn append_route(
    file: &std::path::Path,
    route: &Route,
    host: &str,
    port: u16,
) -> Result<(), String> {
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => format!("{APPROVED_HEADER}[\n]\n"),
        Err(e) => return Err(format!("cannot read {}: {e}", file.display())),
    };
    let close = text.rfind(']').ok_or_else(|| {
        format!(
            "{} is not a list of routes (no closing `]`)",
            file.display()
        )
    })?;
    let entry = format!("  {}\n", route_text(route, host, port));
    let updated = format!("{}{entry}{}", &text[..close], &text[close..]);
    std::fs::write(file, updated).map_err(|e| format!("cannot write {}: {e}", file.display()))
}

/// A route as recipe text, e.g. `{ host = "a.example"; ports = [ 443 ]; }`.
fn route_text(route: &Route, host: &str, port: u16) -> String {
    let quote = |s: &str| serde_json::to_string(s).expect("a string serializes");
    let strings = |items: &[String]| {
        let quoted: Vec<String> = items.iter().map(|s| quote(s)).collect();
        format!("[ {} ]", quoted.join(" "))
    };
    let mut text = format!("{{ host = {}; ports = [ {port} ];", quote(host));
    if route.inspect {
        text.push_str(" inspect = true;");
    }
    if let Some(methods) = &route.methods {
        text.push_str(&format!(" methods = {};", strings(methods)));
    }
    if let Some(paths) = &route.paths {
        text.push_str(&format!(" paths = {};", strings(paths)));
    }
    if !route.headers.is_empty() {
        let headers: Vec<String> = route
            .headers
            .iter()
            .map(|h| {
                format!(
                    "{{ name = {}; secret = {}; }}",
                    quote(&h.name),
                    quote(&h.secret)
                )
            })
            .collect();
        text.push_str(&format!(" headers = [ {} ];", headers.join(" ")));
    }
    if !route.addresses.is_empty() {
        let addresses: Vec<String> = route.addresses.iter().map(|a| a.to_string()).collect();
        text.push_str(&format!(" addresses = {};", strings(&addresses)));
    }
    text.push_str(" }");
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn append_route_creates_then_extends_the_list() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("approved.bottle");
        let route = |yaml: &str| -> Route { serde_yaml::from_str(yaml).unwrap() };
        let plain = route("host: '*.example'\nports: [443, 8443]\napprove: true\n");
        append_route(&file, &plain, "a.example", 443).unwrap();
        let local = route("host: 127.0.0.1\nports: [80]\ninspect: true\nmethods: [GET]\naddresses: [127.0.0.1]\napprove: true\n");
        append_route(&file, &local, "127.0.0.1", 80).unwrap();
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(text.ends_with(
            "[\n  { host = \"a.example\"; ports = [ 443 ]; }\n  { host = \"127.0.0.1\"; ports = [ 80 ]; inspect = true; methods = [ \"GET\" ]; addresses = [ \"127.0.0.1\" ]; }\n]\n"
        ), "{text}");
    }
}
