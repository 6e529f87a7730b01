//! The approval broker: the [`Approver`] a run hands its egress proxy, and
//! what the git gate's pre-receive hook asks about a push outside a
//! remote's patterns (through the control socket, `ask`).
//! Requests for the same host and port wait on one question; an answer
//! releases every request waiting on it; no answer within the timeout is a
//! denial. "For this run" and "always" are remembered for the run's life;
//! "always" also writes the route into the recipe's `approved.bottle` (or
//! the refs into `approved-push-REMOTE.bottle`).
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

/// A push the git gate holds: the refs outside the remote's push patterns.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct PushQuestion {
    /// The remote's name in the recipe (`git.NAME`).
    pub remote: String,
    /// Its upstream.
    pub url: String,
    pub refs: Vec<PushRef>,
}

/// One ref update of a held push.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct PushRef {
    #[serde(rename = "ref")]
    pub name: String,
    pub old: String,
    pub new: String,
}

impl PushRef {
    /// `refs/heads/x 1a2b3c4→5d6e7f8` (`new` or `delete` for an absent side).
    pub fn describe(&self) -> String {
        let short = |id: &str| {
            if id.bytes().all(|b| b == b'0') {
                None
            } else {
                Some(id.chars().take(7).collect::<String>())
            }
        };
        match (short(&self.old), short(&self.new)) {
            (None, Some(new)) => format!("{} (new) {new}", self.name),
            (Some(old), None) => format!("{} {old} (delete)", self.name),
            (old, new) => format!(
                "{} {}→{}",
                self.name,
                old.unwrap_or_default(),
                new.unwrap_or_default()
            ),
        }
    }
}

/// A question waiting for a person, as `bottle supervise` shows it: a
/// connection (`host`, `port`) or a push (`push`).
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct Pending {
    pub id: u64,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub host: String,
    #[serde(default, skip_serializing_if = "is_zero")]
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub push: Option<PushQuestion>,
}

fn is_zero(n: &u16) -> bool {
    *n == 0
}

impl Pending {
    /// What is asked, in a few words: `host:port`, or the push's remote
    /// and refs with their old and new commits.
    pub fn subject(&self) -> String {
        match &self.push {
            None => format!("{}:{}", self.host, self.port),
            Some(push) => {
                let refs: Vec<String> = push.refs.iter().map(PushRef::describe).collect();
                format!("push to {}: {}", push.remote, refs.join(", "))
            }
        }
    }
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
    /// (remote, ref) pushes allowed for the rest of the run.
    allowed_refs: HashSet<(String, String)>,
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
                        write into; answer `--run`, and change the recipe"
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
                match &held.pending.push {
                    None => {
                        state
                            .allowed
                            .insert((held.pending.host.clone(), held.pending.port));
                    }
                    Some(push) => {
                        for r in &push.refs {
                            state
                                .allowed_refs
                                .insert((push.remote.clone(), r.name.clone()));
                        }
                    }
                }
            }
            held
        };
        self.changed.send_modify(|n| *n += 1);
        let p = &held.pending;
        if verdict == Verdict::Always {
            if let Some(file) = &self.approved_file {
                let written = match &p.push {
                    Some(push) => append_refs(&approved_push_file(file, &push.remote), push),
                    None => {
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
                        append_route(file, route, &p.host, p.port)
                    }
                };
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
        match &p.push {
            Some(push) => format!(
                "a person denied the push to `{}` ({}){said}. It can go through only if a \
                 person allows it when it is asked again (`bottle supervise {}`) or the \
                 recipe's `git.{}.push` patterns include the ref",
                push.remote,
                ref_names(push),
                self.run,
                push.remote
            ),
            None => format!(
                "a person denied {}:{}{said}. It can be reached only if a person allows it \
                 when it is asked again (`bottle supervise {}`) or adds a route for host \
                 \"{}\" port {} to the bottle's recipe",
                p.host, p.port, self.run, p.host, p.port
            ),
        }
    }

    async fn wait(&self, q: Question) -> Answer {
        let (tx, rx) = oneshot::channel();
        let (id, asked) = {
            let mut state = self.state.lock().expect("broker lock");
            if state.allowed.contains(&(q.host.clone(), q.port)) {
                return Answer::Allow;
            }
            match state.held.iter_mut().find(|h| {
                h.pending.push.is_none() && h.pending.host == q.host && h.pending.port == q.port
            }) {
                Some(held) => {
                    held.waiters.push(tx);
                    held.pending.waiting = held.waiters.len();
                    (held.pending.id, None)
                }
                None => {
                    let pending = Pending {
                        id: state.next_id,
                        host: q.host.clone(),
                        port: q.port,
                        method: q.method.clone(),
                        path: q.path.clone(),
                        rule: q.rule.clone(),
                        route: q.route,
                        asked: now(),
                        waiting: 1,
                        push: None,
                    };
                    state.next_id += 1;
                    state.held.push(Held {
                        pending: pending.clone(),
                        waiters: vec![tx],
                    });
                    (pending.id, Some(pending))
                }
            }
        };
        let expired = format!(
            "no person answered within {} s whether {}:{} may be reached. It can be \
             reached only if a person allows it when it is asked (`bottle supervise {}`) \
             or adds a route for host \"{}\" port {} to the bottle's recipe",
            self.timeout.as_secs(),
            q.host,
            q.port,
            self.run,
            q.host,
            q.port
        );
        self.answer_of(id, asked, rx, expired).await
    }

    /// Whether `push` needs a person (its refs are not all allowed for the
    /// run): then what the agent is told while it waits.
    pub fn will_ask(&self, push: &PushQuestion) -> Option<String> {
        let state = self.state.lock().expect("broker lock");
        let allowed = push.refs.iter().all(|r| {
            state
                .allowed_refs
                .contains(&(push.remote.clone(), r.name.clone()))
        });
        (!allowed).then(|| {
            format!(
                "{} is outside the push patterns of `{}`; waiting up to {} s for a person \
                 to allow it (`bottle supervise {}`)",
                ref_names(push),
                push.remote,
                self.timeout.as_secs(),
                self.run
            )
        })
    }

    /// Hold a push the git gate's hook asks about (refs outside the remote's
    /// push patterns) until a person answers; refs allowed for the run pass
    /// without a question.
    pub async fn ask_push(&self, push: PushQuestion) -> Answer {
        let (tx, rx) = oneshot::channel();
        let (id, pending) = {
            let mut state = self.state.lock().expect("broker lock");
            if push.refs.iter().all(|r| {
                state
                    .allowed_refs
                    .contains(&(push.remote.clone(), r.name.clone()))
            }) {
                return Answer::Allow;
            }
            let pending = Pending {
                id: state.next_id,
                host: String::new(),
                port: 0,
                method: None,
                path: None,
                rule: format!("git.{}.push-ask", push.remote),
                route: 0,
                asked: now(),
                waiting: 1,
                push: Some(push.clone()),
            };
            state.next_id += 1;
            state.held.push(Held {
                pending: pending.clone(),
                waiters: vec![tx],
            });
            (pending.id, pending)
        };
        let expired = format!(
            "no person answered within {} s whether the push to `{}` ({}) may go through. \
             It can go through only if a person allows it when it is asked \
             (`bottle supervise {}`) or the recipe's `git.{}.push` patterns include the ref",
            self.timeout.as_secs(),
            push.remote,
            ref_names(&push),
            self.run,
            push.remote
        );
        self.answer_of(id, Some(pending), rx, expired).await
    }

    /// Wait for the answer to question `id` (just `asked`, if this request
    /// raised it); `expired` is the refusal when no one answers in time.
    async fn answer_of(
        &self,
        id: u64,
        asked: Option<Pending>,
        rx: oneshot::Receiver<Answer>,
        expired: String,
    ) -> Answer {
        if let Some(p) = &asked {
            self.event("asked", p, None);
        }
        self.changed.send_modify(|n| *n += 1);
        let mut waiting = Waiting {
            broker: self,
            id,
            rx: Some(rx),
        };
        let rx = waiting.rx.as_mut().expect("just set");
        let answer = tokio::time::timeout(self.timeout, rx).await;
        waiting.rx = None;
        match answer {
            Ok(Ok(answer)) => answer,
            _ => {
                if let Some(p) = self.forget_unwaited(id) {
                    self.event("timed-out", &p, None);
                }
                Answer::Deny(expired)
            }
        }
    }

    /// Forget question `id` if no request waits on it any more; it, if so.
    fn forget_unwaited(&self, id: u64) -> Option<Pending> {
        let gone = {
            let mut state = self.state.lock().expect("broker lock");
            let at = state.held.iter().position(|h| h.pending.id == id);
            at.and_then(|at| {
                let held = &mut state.held[at];
                held.waiters.retain(|w| !w.is_closed());
                held.pending.waiting = held.waiters.len();
                held.waiters
                    .is_empty()
                    .then(|| state.held.remove(at).pending)
            })
        };
        self.changed.send_modify(|n| *n += 1);
        gone
    }

    fn event(&self, event: &str, p: &Pending, answer: Option<&str>) {
        use std::io::Write;
        let Some(path) = &self.events else { return };
        let mut line = serde_json::json!({
            "time": now(),
            "source": "supervise",
            "event": event,
            "id": p.id,
            "answer": answer,
        });
        match &p.push {
            None => {
                line["host"] = serde_json::json!(p.host);
                line["port"] = serde_json::json!(p.port);
            }
            Some(push) => {
                line["remote"] = serde_json::json!(push.remote);
                line["refs"] = serde_json::json!(push.refs);
            }
        }
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            let _ = writeln!(f, "{line}");
        }
    }
}

/// The refs of a push, `a, b`.
fn ref_names(push: &PushQuestion) -> String {
    let names: Vec<&str> = push.refs.iter().map(|r| r.name.as_str()).collect();
    names.join(", ")
}

/// A request waiting on question `id`. Dropped before its answer (the
/// agent gave up: its connection closed), it forgets the question if no
/// other request waits on it, so nothing stays pending with no one asking.
struct Waiting<'a> {
    broker: &'a Broker,
    id: u64,
    rx: Option<oneshot::Receiver<Answer>>,
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        if let Some(rx) = self.rx.take() {
            drop(rx);
            if let Some(p) = self.broker.forget_unwaited(self.id) {
                self.broker.event("abandoned", &p, None);
            }
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
    append_to_list(
        file,
        APPROVED_HEADER,
        &format!("  {}\n", route_text(route, host, port)),
    )
}

/// Where "always" writes the refs of remote `remote`: beside `approved`
/// (the recipe's `approved.bottle`), `approved-push-REMOTE.bottle`.
pub fn approved_push_file(approved: &std::path::Path, remote: &str) -> PathBuf {
    approved.with_file_name(format!("approved-push-{remote}.bottle"))
}

/// Add the refs of `push` to the list of push patterns in `file` (created
/// if missing), each as an exact ref name.
pub fn append_refs(file: &std::path::Path, push: &PushQuestion) -> Result<(), String> {
    let header = format!(
        "# Refs a person allowed \"always\" for pushes to `{remote}` (`bottle approve --always`).\n\
# bottle appends to this list; review it like any change to the recipe, which imports it:\n\
#   git.{remote}.push = import ./approved-push-{remote}.bottle ++ [ ... ];\n",
        remote = push.remote
    );
    let entries: String = push
        .refs
        .iter()
        .map(|r| format!("  {}\n", nix_string(&r.name)))
        .collect();
    append_to_list(file, &header, &entries)
}

/// Insert `entries` before the closing `]` of the list in `file`, which is
/// created (with `header`) if missing.
fn append_to_list(file: &std::path::Path, header: &str, entries: &str) -> Result<(), String> {
    let text = match std::fs::read_to_string(file) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => format!("{header}[\n]\n"),
        Err(e) => return Err(format!("cannot read {}: {e}", file.display())),
    };
    let close = text
        .rfind(']')
        .ok_or_else(|| format!("{} is not a list (no closing `]`)", file.display()))?;
    let updated = format!("{}{entries}{}", &text[..close], &text[close..]);
    std::fs::write(file, updated).map_err(|e| format!("cannot write {}: {e}", file.display()))
}

/// `s` as a recipe string literal.
fn nix_string(s: &str) -> String {
    serde_json::to_string(s)
        .expect("a string serializes")
        .replace("${", "\\${")
}

/// A route as recipe text, e.g. `{ host = "a.example"; ports = [ 443 ]; }`.
fn route_text(route: &Route, host: &str, port: u16) -> String {
    let quote = nix_string;
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

    #[test]
    fn append_refs_writes_exact_ref_names_beside_the_recipe() {
        let dir = tempfile::tempdir().unwrap();
        let file = approved_push_file(&dir.path().join("approved.bottle"), "origin");
        assert_eq!(file, dir.path().join("approved-push-origin.bottle"));
        let push = PushQuestion {
            remote: "origin".into(),
            url: "/r".into(),
            refs: vec![
                PushRef {
                    name: "refs/heads/main".into(),
                    old: "1".repeat(40),
                    new: "2".repeat(40),
                },
                PushRef {
                    name: "refs/heads/odd${x}".into(),
                    old: "0".repeat(40),
                    new: "3".repeat(40),
                },
            ],
        };
        append_refs(&file, &push).unwrap();
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(text.starts_with("# Refs a person allowed"), "{text}");
        assert!(
            text.ends_with("[\n  \"refs/heads/main\"\n  \"refs/heads/odd\\${x}\"\n]\n"),
            "{text}"
        );
        assert_eq!(push.refs[0].describe(), "refs/heads/main 1111111→2222222");
        assert_eq!(push.refs[1].describe(), "refs/heads/odd${x} (new) 3333333");
    }

    #[tokio::test]
    async fn a_push_allowed_for_the_run_is_not_asked_again() {
        let broker =
            std::sync::Arc::new(Broker::new("t", Duration::from_secs(5), None, None, vec![]));
        let push = PushQuestion {
            remote: "origin".into(),
            url: "/r".into(),
            refs: vec![PushRef {
                name: "refs/heads/main".into(),
                old: "1".repeat(40),
                new: "2".repeat(40),
            }],
        };
        let asking = tokio::spawn({
            let (broker, push) = (broker.clone(), push.clone());
            async move { broker.ask_push(push).await }
        });
        let id = loop {
            if let Some(p) = broker.pending().first() {
                break p.id;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        let answered = broker.decide(id, Verdict::Run, None).unwrap();
        assert_eq!(
            answered.subject(),
            "push to origin: refs/heads/main 1111111→2222222"
        );
        assert_eq!(asking.await.unwrap(), Answer::Allow);
        assert_eq!(broker.will_ask(&push), None);
        assert_eq!(broker.ask_push(push).await, Answer::Allow);
        assert!(broker.pending().is_empty());
    }

    #[tokio::test]
    async fn always_for_a_push_writes_the_refs_beside_the_recipe() {
        let dir = tempfile::tempdir().unwrap();
        let approved = dir.path().join("approved.bottle");
        let broker = std::sync::Arc::new(Broker::new(
            "t",
            Duration::from_secs(5),
            None,
            Some(approved.clone()),
            vec![],
        ));
        let push = PushQuestion {
            remote: "origin".into(),
            url: "/r".into(),
            refs: vec![PushRef {
                name: "refs/heads/release".into(),
                old: "0".repeat(40),
                new: "2".repeat(40),
            }],
        };
        assert!(broker
            .will_ask(&push)
            .unwrap()
            .contains("waiting up to 5 s"));
        let asking = tokio::spawn({
            let (broker, push) = (broker.clone(), push.clone());
            async move { broker.ask_push(push).await }
        });
        let id = loop {
            if let Some(p) = broker.pending().first() {
                break p.id;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        broker.decide(id, Verdict::Always, None).unwrap();
        assert_eq!(asking.await.unwrap(), Answer::Allow);
        let text = std::fs::read_to_string(dir.path().join("approved-push-origin.bottle")).unwrap();
        assert!(text.contains("git.origin.push = import ./approved-push-origin.bottle"));
        assert!(text.ends_with("[\n  \"refs/heads/release\"\n]\n"), "{text}");
        assert!(!approved.exists(), "the routes' file is not touched");
    }

    #[tokio::test]
    async fn a_question_no_one_waits_on_any_more_is_forgotten() {
        let broker = std::sync::Arc::new(Broker::new(
            "t",
            Duration::from_secs(60),
            None,
            None,
            vec![],
        ));
        let question = Question {
            host: "a.example".into(),
            port: 443,
            method: None,
            path: None,
            route: 0,
            rule: "routes[0]".into(),
        };
        let first = tokio::spawn({
            let (broker, q) = (broker.clone(), question.clone());
            async move { broker.wait(q).await }
        });
        let second = tokio::spawn({
            let (broker, q) = (broker.clone(), question.clone());
            async move { broker.wait(q).await }
        });
        while broker.pending().first().map(|p| p.waiting) != Some(2) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        first.abort();
        let _ = first.await;
        assert_eq!(broker.pending()[0].waiting, 1, "the other still waits");
        second.abort();
        let _ = second.await;
        assert!(broker.pending().is_empty(), "{:?}", broker.pending());
    }
}
