//! The egress sidecar: the one door out of a bottle. An HTTP proxy (CONNECT
//! and absolute-form HTTP/1.1) that lets a request out only when a route of
//! the bottle's `egress.yaml` allows its host and port; for routes marked
//! `inspect` it terminates TLS with a per-run CA so method/path rules and
//! secret header injection apply to HTTPS too. Internal addresses are refused
//! unless a route names them, and every decision is one JSON line in the
//! audit log.
//!
//! The pieces: `policy` (the file contract), `rules` (matching), `request`
//! (parsing untrusted request heads), `ssrf`, `secrets`, `audit`, `inspect`
//! (the CA and TLS), `stream` (byte plumbing), `proxy` (the connection
//! handling), `listen` (sockets). `bottle run` calls [`Egress::new`] and
//! [`serve`]; `bottle sidecar egress` does the same from the command line.

pub mod approval;
pub mod audit;
pub mod inspect;
pub mod listen;
pub mod policy;
mod proxy;
pub mod request;
pub mod rules;
pub mod secrets;
pub mod ssrf;
mod stream;

pub use listen::{Listen, Listener};
pub use policy::Policy;

use hyper::header::{HeaderName, HeaderValue};
use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;

/// Bounds that keep one client from starving the others.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest request head (request line and headers) accepted, in bytes.
    pub max_header_bytes: usize,
    /// Time a client has to send a complete request head.
    pub header_timeout: Duration,
    /// Time to reach an upstream (DNS, TCP, and TLS for inspected routes).
    pub connect_timeout: Duration,
    /// A tunnel with no bytes either way for this long is closed.
    pub tunnel_idle: Duration,
    /// No tunnel or connection lives longer than this.
    pub tunnel_total: Duration,
    /// Client connections served at once; more get a 503.
    pub max_tunnels: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_header_bytes: 64 * 1024,
            header_timeout: Duration::from_secs(15),
            connect_timeout: Duration::from_secs(15),
            tunnel_idle: Duration::from_secs(300),
            tunnel_total: Duration::from_secs(6 * 3600),
            max_tunnels: 1024,
        }
    }
}

/// How an [`Egress`] runs, beyond what the policy says.
#[derive(Debug, Clone, Default)]
pub struct EgressOptions {
    /// Append one JSON line per decision to this file.
    pub audit: Option<PathBuf>,
    pub limits: Limits,
    /// Fixed answers for host names, consulted before the system resolver.
    /// For tests, which point names like `allowed.test` at loopback servers;
    /// `bottle run` leaves it empty.
    pub resolve_overrides: HashMap<String, Vec<IpAddr>>,
    /// Who decides connections on `approve` routes; without one they are denied.
    pub approver: Option<Arc<dyn approval::Approver>>,
}

/// A policy ready to enforce: compiled routes, loaded secrets, the per-run CA.
pub struct Egress {
    pub(crate) bottle: String,
    pub(crate) table: rules::RouteTable,
    /// With `default: ask`, the route of requests no route allows (see `approval`).
    pub(crate) asked: Option<rules::CompiledRoute>,
    /// The headers each route injects, by route index, values from secrets.
    pub(crate) injections: Vec<Vec<(HeaderName, HeaderValue)>>,
    pub(crate) authority: inspect::Authority,
    pub(crate) upstream_tls: Arc<rustls::ClientConfig>,
    pub(crate) audit: audit::AuditLog,
    pub(crate) options: EgressOptions,
    pub(crate) slots: Arc<Semaphore>,
    /// This host's interface addresses, read at start, refused by the SSRF guard.
    pub(crate) host_addresses: ssrf::HostAddresses,
}

impl std::fmt::Debug for Egress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Egress")
            .field("bottle", &self.bottle)
            .finish_non_exhaustive()
    }
}

impl Egress {
    /// Compile `policy`, read its secrets from the host, and generate this
    /// run's CA. Fails when a secret's source is missing.
    pub fn new(policy: Policy, options: EgressOptions) -> miette::Result<Arc<Egress>> {
        policy.check()?;
        let secrets = secrets::Secrets::load(&policy)?;
        let table = rules::RouteTable::new(&policy);
        let asked = approval::asked_route(&policy);
        let injections = policy
            .routes
            .iter()
            .map(|route| {
                route
                    .headers
                    .iter()
                    .map(|h| {
                        let name = HeaderName::from_bytes(h.name.as_bytes())
                            .expect("Policy::check validated header names");
                        let value = secrets
                            .get(&h.secret)
                            .expect("Policy::check validated secret names")
                            .header_value()
                            .clone();
                        (name, value)
                    })
                    .collect()
            })
            .chain(asked.iter().map(|_| Vec::new()))
            .collect();
        let authority = inspect::Authority::generate(&policy.bottle)?;
        let upstream_tls = inspect::upstream_config(policy.upstream_ca.as_deref())?;
        let audit = audit::AuditLog::open(options.audit.as_deref(), &policy.bottle)?;
        Ok(Arc::new(Egress {
            bottle: policy.bottle.clone(),
            table,
            asked,
            injections,
            authority,
            upstream_tls,
            audit,
            slots: Arc::new(Semaphore::new(options.limits.max_tunnels)),
            host_addresses: ssrf::HostAddresses::read(),
            options,
        }))
    }

    /// The route that decides `host:port`: a route of the policy, else the
    /// asking route of `default: ask`.
    pub(crate) fn find(&self, host: &str, port: u16) -> Option<&rules::CompiledRoute> {
        self.table.find(host, port).or(self.asked.as_ref())
    }

    /// The route at `index` (the asking route is the one after the policy's).
    pub(crate) fn route(&self, index: usize) -> &rules::CompiledRoute {
        match self.table.routes().get(index) {
            Some(route) => route,
            None => self.asked.as_ref().expect("route indexes come from find"),
        }
    }

    /// The per-run CA certificate (PEM) the guest must trust for inspected routes.
    pub fn ca_certificate_pem(&self) -> String {
        self.authority.certificate_pem()
    }

    pub fn bottle(&self) -> &str {
        &self.bottle
    }

    /// The addresses to try for `host` on `route`: the address itself for
    /// an IP literal; the route's `addresses` when it lists any (the name
    /// then never reaches a resolver); otherwise the test overrides, then
    /// the system resolver.
    pub(crate) async fn resolve(
        &self,
        route: &rules::CompiledRoute,
        host: &str,
        port: u16,
    ) -> std::io::Result<Vec<SocketAddr>> {
        if let Some(ip) = rules::parse_ip(host) {
            return Ok(vec![SocketAddr::new(ip, port)]);
        }
        if !route.route.addresses.is_empty() {
            return Ok(route
                .route
                .addresses
                .iter()
                .map(|ip| SocketAddr::new(*ip, port))
                .collect());
        }
        if let Some(ips) = self.options.resolve_overrides.get(host) {
            return Ok(ips.iter().map(|ip| SocketAddr::new(*ip, port)).collect());
        }
        Ok(tokio::net::lookup_host((host, port)).await?.collect())
    }
}

/// How many tokio worker threads a runtime serving the proxy should have.
/// The kernel shares CPU time per thread, and the proxy shares the host with
/// the VM's vCPU threads and whatever else runs there: with one worker per
/// core it is starved on a busy host (see `scripts/bench-egress`). Idle
/// workers cost little.
pub fn recommended_workers() -> usize {
    let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
    (cpus * 8).clamp(16, 64)
}

/// Bind `listen` and serve until `shutdown` completes.
pub async fn serve(
    egress: Arc<Egress>,
    listen: Listen,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let listener = Listener::bind(&listen).await?;
    serve_on(egress, listener, shutdown).await
}

/// Serve on an already bound listener (lets a caller bind port 0 and learn
/// the port first) until `shutdown` completes; open connections are then
/// closed.
pub async fn serve_on(
    egress: Arc<Egress>,
    listener: Listener,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    proxy::accept_loop(egress, &listener, shutdown).await
}
