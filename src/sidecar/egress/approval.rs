//! The one place the proxy waits for a person. A route marked `approve`
//! lets a connection out only once an [`Approver`] (the run's supervise
//! broker, `crate::supervise`) says so; the proxy awaits the answer where it
//! would otherwise have let the connection through, and turns a refusal into
//! a 403 whose body is the approver's reason. With `default: ask`, a
//! request no route allows takes the [`asked_route`]: one that asks, for any
//! host and port, and opens nothing else (no inspection, no headers, no SSRF
//! exemption).
use super::policy::{Policy, Route, Unmatched};
use super::rules::{CompiledRoute, HostPattern};
use std::fmt::Debug;
use std::future::Future;
use std::pin::Pin;

/// What the proxy asks: a connection to `host:port` on a route that needs a
/// person (the method and path when the request is plain HTTP).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    pub host: String,
    pub port: u16,
    pub method: Option<String>,
    pub path: Option<String>,
    /// The route that asked: its index in the policy, and its name in audit
    /// lines (`routes[i] host`).
    pub route: usize,
    pub rule: String,
}

/// A person's answer, as the proxy needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    Allow,
    /// Refused; the reason tells the agent what a person would have to allow.
    Deny(String),
}

/// Something that decides held requests. It bounds its own wait: the proxy
/// awaits [`Approver::ask`] without a timeout of its own.
pub trait Approver: Send + Sync + Debug {
    fn ask(&self, question: Question) -> Pin<Box<dyn Future<Output = Answer> + Send + '_>>;
}

/// The route of requests no route allows, when the policy says `default: ask`;
/// its index is the one after the policy's last route.
pub(crate) fn asked_route(policy: &Policy) -> Option<CompiledRoute> {
    (policy.default == Unmatched::Ask).then(|| CompiledRoute {
        index: policy.routes.len(),
        // Never matched against: the route table is searched first.
        host: HostPattern::Exact(String::new()),
        ports: Vec::new(),
        inspect: false,
        methods: None,
        paths: None,
        route: Route {
            host: "(default: ask)".into(),
            ports: Vec::new(),
            inspect: false,
            methods: None,
            paths: None,
            headers: Vec::new(),
            addresses: Vec::new(),
            approve: true,
        },
    })
}
