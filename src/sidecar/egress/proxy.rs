//! Serving client connections: read the first request head, then either open
//! a CONNECT tunnel (relayed as bytes, or TLS-terminated for inspected routes)
//! or serve absolute-form HTTP/1.1 with hyper, forwarding each allowed request
//! upstream. Every outcome is one audit entry; every refusal is an HTTP
//! response that says why.

use super::audit::Entry;
use super::listen::Listener;
use super::request::{parse_absolute, parse_authority, parse_head, Head, HeadParse, Target};
use super::rules::{is_dns_name, normalize_host, parse_ip, CompiledRoute, METHOD_OVERRIDE_HEADERS};
use super::ssrf;
use super::stream::{bounded, relay, Activity, Counters, Io, Metered, Rewind, Shared};
use super::Egress;
use bytes::{Bytes, BytesMut};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::{Method, Request, Response, StatusCode, Version};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinSet;

/// Accept connections until `shutdown`, each served on its own task.
pub(crate) async fn accept_loop(
    egress: Arc<Egress>,
    listener: &Listener,
    shutdown: impl std::future::Future<Output = ()>,
) -> std::io::Result<()> {
    let mut tasks = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        while tasks.try_join_next().is_some() {}
        let accepted = match listener {
            Listener::Tcp(l) => tokio::select! {
                _ = &mut shutdown => break,
                a = l.accept() => a.map(|(s, addr)| {
                    let _ = s.set_nodelay(true);
                    tasks.spawn(handle(egress.clone(), s, addr.to_string()));
                }),
            },
            Listener::Unix(l, _) => tokio::select! {
                _ = &mut shutdown => break,
                a = l.accept() => a.map(|(s, _)| {
                    tasks.spawn(handle(egress.clone(), s, "unix".to_string()));
                }),
            },
        };
        if let Err(err) = accepted {
            // Out of file descriptors and the like: pause, keep serving.
            eprintln!("bottle egress: accept failed: {err}");
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }
    tasks.shutdown().await;
    Ok(())
}

/// Why a request was not let through, as the client and the audit log see it.
#[derive(Debug, Clone)]
pub(crate) struct Refusal {
    status: StatusCode,
    /// `deny` for policy refusals, `allow` when the route allowed it but the
    /// upstream could not be reached.
    decision: &'static str,
    rule: String,
    reason: String,
}

impl Refusal {
    fn deny(status: StatusCode, rule: String, reason: String) -> Refusal {
        Refusal {
            status,
            decision: "deny",
            rule,
            reason,
        }
    }

    fn no_route(egress: &Egress, target: &Target) -> Refusal {
        let shown = show_host(&target.host);
        let mut reason = format!("no route allows {shown}:{}", target.port);
        if parse_ip(&target.host).is_none() && !is_dns_name(&target.host) {
            reason.push_str(&format!(
                " (`{}` is not a well-formed host name)",
                target.host
            ));
        } else if egress.table.host_known(&target.host) {
            reason.push_str(&format!(" (routes allow {shown} on other ports only)"));
        }
        Refusal::deny(StatusCode::FORBIDDEN, "default deny".into(), reason)
    }

    fn upstream(route: &CompiledRoute, status: StatusCode, reason: String) -> Refusal {
        Refusal {
            status,
            decision: "allow",
            rule: route.label(),
            reason,
        }
    }

    fn head_too_large(max: usize) -> Refusal {
        Refusal::deny(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "header size limit".into(),
            format!("the request head is larger than {max} bytes"),
        )
    }

    fn head_timeout(limit: std::time::Duration) -> Refusal {
        Refusal::deny(
            StatusCode::REQUEST_TIMEOUT,
            "header timeout".into(),
            format!("no complete request head within {limit:?}"),
        )
    }

    fn malformed(reason: String) -> Refusal {
        Refusal::deny(StatusCode::BAD_REQUEST, "malformed request".into(), reason)
    }

    fn body(&self) -> String {
        format!("bottle egress: {}\n", self.reason)
    }

    fn record(&self, egress: &Egress, mut entry: Entry) {
        entry.decision = self.decision;
        entry.rule = self.rule.clone();
        entry.reason = Some(self.reason.clone());
        entry.status = Some(self.status.as_u16());
        egress.audit.record(&entry);
    }

    fn response(&self) -> Response<RespBody> {
        let mut response = Response::new(RespBody::text(self.body()));
        *response.status_mut() = self.status;
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        headers.insert(
            HeaderName::from_static("x-bottle-egress"),
            HeaderValue::from_static("refused"),
        );
        response
    }

    /// Write the refusal on a raw stream and close it.
    async fn write_to<S: Io>(&self, client: &mut S) {
        let body = self.body();
        let text = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\nX-Bottle-Egress: refused\r\n\r\n{body}",
            self.status.as_u16(),
            self.status.canonical_reason().unwrap_or(""),
            body.len()
        );
        let _ = client.write_all(text.as_bytes()).await;
        close_after_answer(client).await;
    }
}

/// Close a client stream that has had its answer. Closing with unread input
/// makes the kernel send a reset, which can destroy the answer before the
/// client reads it: read and discard what the client still sends, briefly
/// and boundedly, then close.
async fn close_after_answer<S: Io>(client: &mut S) {
    let _ = client.shutdown().await;
    let mut sink = vec![0u8; 16 * 1024];
    let drain = async {
        let mut total = 0;
        while total < (1 << 20) {
            match client.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(n) => total += n,
            }
        }
    };
    // Long enough for a client on a loaded host to finish sending; a
    // client that half-closes (as HTTP clients do) ends it at once.
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), drain).await;
}

fn show_host(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_string()
    }
}

enum HeadError {
    Closed,
    TooLarge,
    Malformed(String),
}

/// Read until a whole request head is buffered. Returns the head and every
/// byte read so far (the head and whatever followed it).
async fn read_head<S: Io>(client: &mut S, max: usize) -> Result<(Head, Bytes), HeadError> {
    let mut buf = BytesMut::with_capacity(4096);
    loop {
        if buf.len() >= max {
            return Err(HeadError::TooLarge);
        }
        buf.reserve(4096);
        let n = client
            .read_buf(&mut buf)
            .await
            .map_err(|_| HeadError::Closed)?;
        if n == 0 {
            return Err(if buf.is_empty() {
                HeadError::Closed
            } else {
                HeadError::Malformed("the connection closed in the middle of a request head".into())
            });
        }
        match parse_head(&buf) {
            HeadParse::Complete(head) => return Ok((head, buf.freeze())),
            HeadParse::Partial => {}
            HeadParse::Malformed(why) => return Err(HeadError::Malformed(why)),
        }
    }
}

/// Serve one client connection.
async fn handle<S: Io>(egress: Arc<Egress>, mut client: S, peer: String) {
    let Ok(_slot) = egress.slots.clone().try_acquire_owned() else {
        let busy = Refusal::deny(
            StatusCode::SERVICE_UNAVAILABLE,
            "connection limit".into(),
            "too many connections at once; try again shortly".into(),
        );
        busy.record(&egress, Entry::new(&peer, "-", "-", 0, None));
        busy.write_to(&mut client).await;
        return;
    };
    let limits = egress.options.limits.clone();
    let first = tokio::time::timeout(
        limits.header_timeout,
        read_head(&mut client, limits.max_header_bytes),
    )
    .await;
    let refusal = match first {
        Ok(Ok((head, buf))) => {
            if head.method.eq_ignore_ascii_case("CONNECT") {
                let leftover = buf.slice(head.len..);
                connect_raw(egress, client, &head.target, leftover, peer).await;
            } else {
                serve_http(egress, Rewind::new(buf, client), peer, Origin::Plain, None).await;
            }
            return;
        }
        Ok(Err(HeadError::Closed)) => return,
        Ok(Err(HeadError::TooLarge)) => Refusal::head_too_large(limits.max_header_bytes),
        Ok(Err(HeadError::Malformed(why))) => {
            Refusal::malformed(format!("malformed request: {why}"))
        }
        Err(_) => Refusal::head_timeout(limits.header_timeout),
    };
    refusal.record(&egress, Entry::new(&peer, "-", "-", 0, None));
    refusal.write_to(&mut client).await;
}

/// The upstream side of an allowed CONNECT: raw TCP to relay, or, for an
/// inspected route, an HTTP connection over verified TLS.
enum Link {
    Raw(TcpStream),
    Http(SendRequest<UpBody>),
}

struct Opened {
    route: usize,
    target: Target,
    link: Link,
}

/// Decide a CONNECT and reach the upstream.
async fn open(egress: &Egress, target: Target) -> Result<Opened, Refusal> {
    let route = egress
        .find(&target.host, target.port)
        .ok_or_else(|| Refusal::no_route(egress, &target))?;
    approved(egress, route, &target, None).await?;
    let tcp = dial(egress, route, &target).await?;
    let link = if route.inspect {
        Link::Http(tls_handshake(egress, route, &target, tcp).await?)
    } else {
        Link::Raw(tcp)
    };
    Ok(Opened {
        route: route.index,
        target,
        link,
    })
}

/// A route marked `approve` waits here for a person (see `approval`).
async fn approved(
    egress: &Egress,
    route: &CompiledRoute,
    target: &Target,
    method: Option<&str>,
) -> Result<(), Refusal> {
    use super::approval::{Answer, Question};
    if !route.route.approve {
        return Ok(());
    }
    let shown = format!("{}:{}", show_host(&target.host), target.port);
    let Some(approver) = &egress.options.approver else {
        return Err(Refusal::deny(
            StatusCode::FORBIDDEN,
            route.label(),
            format!(
                "{} needs a person to allow {shown}, and no one supervises this proxy",
                route.label()
            ),
        ));
    };
    let question = Question {
        host: normalize_host(&target.host),
        port: target.port,
        method: method.map(str::to_string),
        path: target
            .path
            .as_deref()
            .map(|p| p.split('?').next().unwrap_or(p).to_string()),
        route: route.index,
        rule: route.label(),
    };
    match approver.ask(question).await {
        Answer::Allow => Ok(()),
        Answer::Deny(reason) => Err(Refusal::deny(StatusCode::FORBIDDEN, route.label(), reason)),
    }
}

/// Resolve, screen (SSRF guard) and connect, within the connect timeout.
async fn dial(
    egress: &Egress,
    route: &CompiledRoute,
    target: &Target,
) -> Result<TcpStream, Refusal> {
    let limit = egress.options.limits.connect_timeout;
    let shown = format!("{}:{}", show_host(&target.host), target.port);
    let attempt = async {
        let addrs = egress
            .resolve(route, &target.host, target.port)
            .await
            .map_err(|e| {
                Refusal::upstream(
                    route,
                    StatusCode::BAD_GATEWAY,
                    format!("cannot resolve {shown}: {e}"),
                )
            })?;
        let addrs = ssrf::screen(route, &target.host, addrs, &egress.host_addresses)
            .map_err(|why| Refusal::deny(StatusCode::FORBIDDEN, route.label(), why))?;
        let mut last = None;
        for addr in addrs {
            match TcpStream::connect(addr).await {
                Ok(stream) => {
                    let _ = stream.set_nodelay(true);
                    return Ok(stream);
                }
                Err(err) => last = Some(format!("{addr}: {err}")),
            }
        }
        Err(Refusal::upstream(
            route,
            StatusCode::BAD_GATEWAY,
            format!("cannot connect to {shown} ({})", last.unwrap_or_default()),
        ))
    };
    match tokio::time::timeout(limit, attempt).await {
        Ok(result) => result,
        Err(_) => Err(Refusal::upstream(
            route,
            StatusCode::GATEWAY_TIMEOUT,
            format!("{shown} did not answer within {limit:?}"),
        )),
    }
}

/// TLS to an inspected upstream, verified, then an HTTP/1.1 client on it.
async fn tls_handshake(
    egress: &Egress,
    route: &CompiledRoute,
    target: &Target,
    tcp: TcpStream,
) -> Result<SendRequest<UpBody>, Refusal> {
    let fail = |why: String| Refusal::upstream(route, StatusCode::BAD_GATEWAY, why);
    let name = rustls::pki_types::ServerName::try_from(target.host.clone())
        .map_err(|_| fail(format!("`{}` is not a TLS server name", target.host)))?;
    let connector = tokio_rustls::TlsConnector::from(egress.upstream_tls.clone());
    let limit = egress.options.limits.connect_timeout;
    let tls = match tokio::time::timeout(limit, connector.connect(name, tcp)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(err)) => return Err(fail(format!("TLS with {} failed: {err}", target.host))),
        Err(_) => {
            return Err(Refusal::upstream(
                route,
                StatusCode::GATEWAY_TIMEOUT,
                format!("TLS with {} did not finish within {limit:?}", target.host),
            ))
        }
    };
    http_handshake(tls).await.map_err(fail)
}

async fn http_handshake<T: Io>(io: T) -> Result<SendRequest<UpBody>, String> {
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|e| format!("HTTP handshake with the upstream failed: {e}"))?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

/// A CONNECT that arrived as the first request on a connection.
async fn connect_raw<S: Io>(
    egress: Arc<Egress>,
    mut client: S,
    authority: &str,
    leftover: Bytes,
    peer: String,
) {
    let target = match parse_authority(authority) {
        Ok(target) => target,
        Err(why) => {
            let refusal = Refusal::malformed(why);
            refusal.record(&egress, Entry::new(&peer, "CONNECT", "-", 0, None));
            refusal.write_to(&mut client).await;
            return;
        }
    };
    let entry = Entry::new(&peer, "CONNECT", &target.host, target.port, None);
    match open(&egress, target).await {
        Err(refusal) => {
            refusal.record(&egress, entry);
            refusal.write_to(&mut client).await;
        }
        Ok(opened) => {
            if client
                .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                .await
                .is_err()
            {
                return;
            }
            tunnel(egress, opened, Rewind::new(leftover, client), entry, peer).await;
        }
    }
}

/// Carry an allowed CONNECT to its end, then write its audit entry.
async fn tunnel<S: Io>(
    egress: Arc<Egress>,
    opened: Opened,
    client: S,
    mut entry: Entry,
    peer: String,
) {
    let limits = egress.options.limits.clone();
    let route = egress.route(opened.route);
    entry.decision = "allow";
    entry.rule = route.label();
    entry.status = Some(200);
    match opened.link {
        Link::Raw(upstream) => {
            let (up, down, end) =
                relay(client, upstream, limits.tunnel_idle, limits.tunnel_total).await;
            entry.bytes_up = up;
            entry.bytes_down = down;
            entry.reason = end.reason();
        }
        Link::Http(sender) => {
            let activity = Activity::new();
            let client = Metered::new(client, activity.clone());
            let counters = client.counters.clone();
            let work = async {
                let config = match egress.authority.server_config(&opened.target.host) {
                    Ok(config) => config,
                    Err(why) => return Some(format!("cannot mint a certificate: {why}")),
                };
                let accept = tokio_rustls::TlsAcceptor::from(config).accept(client);
                let tls = match tokio::time::timeout(limits.header_timeout, accept).await {
                    Ok(Ok(tls)) => tls,
                    Ok(Err(err)) => return Some(format!("TLS with the client failed: {err}")),
                    Err(_) => {
                        return Some(format!(
                            "TLS with the client did not finish within {:?}",
                            limits.header_timeout
                        ))
                    }
                };
                if let Some(sni) = tls.get_ref().1.server_name() {
                    if normalize_host(sni) != opened.target.host {
                        return Some(format!(
                            "TLS server name {sni} differs from the CONNECT target"
                        ));
                    }
                }
                let origin = Origin::Inspected {
                    route: opened.route,
                    target: opened.target.clone(),
                };
                serve_http(
                    egress.clone(),
                    tls,
                    peer,
                    origin,
                    Some(Upstream::new(&opened.target, sender)),
                )
                .await
            };
            let mut failure = None;
            let end = bounded(
                async { failure = work.await },
                &activity,
                limits.tunnel_idle,
                limits.tunnel_total,
            )
            .await;
            entry.bytes_up = counters.read.load(Ordering::Relaxed);
            entry.bytes_down = counters.written.load(Ordering::Relaxed);
            entry.reason = failure.or_else(|| end.reason());
        }
    }
    egress.audit.record(&entry);
}

/// [`tunnel`] behind a named future type: a tunnel can serve HTTP that opens
/// another tunnel, and the box breaks that cycle for the compiler.
fn boxed_tunnel(
    egress: Arc<Egress>,
    opened: Opened,
    client: TokioIo<hyper::upgrade::Upgraded>,
    entry: Entry,
    peer: String,
) -> Pin<Box<dyn std::future::Future<Output = ()> + Send>> {
    Box::pin(tunnel(egress, opened, client, entry, peer))
}

/// What the HTTP requests on a connection are aimed at.
#[derive(Clone)]
enum Origin {
    /// A proxy connection: absolute-form requests to any allowed host.
    Plain,
    /// Inside an inspected tunnel: origin-form requests to one route's host.
    Inspected { route: usize, target: Target },
}

/// The upstream connection a client connection is currently using.
struct Upstream {
    host: String,
    port: u16,
    sender: SendRequest<UpBody>,
}

impl Upstream {
    fn new(target: &Target, sender: SendRequest<UpBody>) -> Upstream {
        Upstream {
            host: target.host.clone(),
            port: target.port,
            sender,
        }
    }
}

/// One client connection speaking HTTP/1.1 to the proxy.
struct Exchange {
    egress: Arc<Egress>,
    peer: String,
    origin: Origin,
    /// Requests on one connection are served one at a time, so one upstream
    /// connection is kept and reused while it stays open.
    upstream: tokio::sync::Mutex<Option<Upstream>>,
    /// Bytes read from the client, and how many had been read when the last
    /// response ended: more since then means a next request head began.
    counters: Arc<Counters>,
    answered_at: Arc<AtomicU64>,
}

/// Serve HTTP/1.1 requests on `io` until the client or a limit ends it.
/// Every request head, the first or a later one on a kept-alive connection,
/// in a plain connection or inside an inspected tunnel, has the same limits
/// as the first head of a connection: at most `max_header_bytes` (`431`)
/// and complete within `header_timeout` of the previous response (`408`),
/// each with an audit line. A connection idle between requests for that
/// long is closed without an answer. Returns why the proxy closed it, if
/// it did.
async fn serve_http<S: Io>(
    egress: Arc<Egress>,
    io: S,
    peer: String,
    origin: Origin,
    upstream: Option<Upstream>,
) -> Option<String> {
    let limits = egress.options.limits.clone();
    let activity = Activity::new();
    let io = Metered::new(io, activity.clone());
    let counters = io.counters.clone();
    let io = Shared::new(io);
    let answer_on = io.handle();
    let answered_at = Arc::new(AtomicU64::new(0));
    let exchange = Arc::new(Exchange {
        egress: egress.clone(),
        peer: peer.clone(),
        origin: origin.clone(),
        upstream: tokio::sync::Mutex::new(upstream),
        counters: counters.clone(),
        answered_at: answered_at.clone(),
    });
    let service = hyper::service::service_fn(move |req| {
        let exchange = exchange.clone();
        async move {
            let mark = AnsweredMark {
                counters: exchange.counters.clone(),
                answered_at: exchange.answered_at.clone(),
            };
            let response = exchange.handle(req).await;
            Ok::<_, Infallible>(response.map(|body| Marked { body, _mark: mark }))
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_header_size(limits.max_header_bytes)
        // A client that half-closes after its request still gets the answer.
        .half_close(true)
        .max_buf_size(limits.max_header_bytes.max(8192));
    let conn = builder
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades();
    let mut outcome = None;
    let end = bounded(
        async { outcome = Some(conn.await) },
        &activity,
        limits.tunnel_idle,
        limits.tunnel_total,
    )
    .await;
    let (host, port) = match &origin {
        Origin::Plain => ("-".to_string(), 0),
        Origin::Inspected { target, .. } => (target.host.clone(), target.port),
    };
    let entry = Entry::new(&peer, "-", &host, port, None);
    match outcome {
        Some(Err(err)) if err.is_timeout() => {
            if counters.read.load(Ordering::Relaxed) <= answered_at.load(Ordering::Relaxed) {
                return Some(format!(
                    "closed: no request within {:?}",
                    limits.header_timeout
                ));
            }
            let refusal = Refusal::head_timeout(limits.header_timeout);
            refusal.record(&egress, entry);
            if let Some(mut client) = answer_on.into_inner() {
                refusal.write_to(&mut client).await;
            }
            None
        }
        Some(Err(err)) if err.is_parse_too_large() => {
            // hyper has answered 431 already; the decision is logged here.
            Refusal::head_too_large(limits.max_header_bytes).record(&egress, entry);
            if let Some(mut client) = answer_on.into_inner() {
                close_after_answer(&mut client).await;
            }
            None
        }
        _ => end.reason(),
    }
}

/// Notes, when a response is done (its body dropped), how many bytes the
/// client had sent by then.
struct AnsweredMark {
    counters: Arc<Counters>,
    answered_at: Arc<AtomicU64>,
}

impl Drop for AnsweredMark {
    fn drop(&mut self) {
        let read = self.counters.read.load(Ordering::Relaxed);
        self.answered_at.store(read, Ordering::Relaxed);
    }
}

/// A response body that sets its connection's [`AnsweredMark`] when done.
struct Marked {
    body: RespBody,
    _mark: AnsweredMark,
}

impl Body for Marked {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }
    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }
    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

impl Exchange {
    async fn handle(self: Arc<Self>, req: Request<Incoming>) -> Response<RespBody> {
        let egress = &self.egress;
        match &self.origin {
            Origin::Plain => {
                if req.method() == Method::CONNECT {
                    return self.connect_upgrade(req).await;
                }
                let target = match parse_absolute(&req.uri().to_string()) {
                    Ok(target) => target,
                    Err(why) => {
                        let refusal = Refusal::malformed(why);
                        refusal.record(
                            egress,
                            Entry::new(&self.peer, req.method().as_str(), "-", 0, None),
                        );
                        return refusal.response();
                    }
                };
                match egress.find(&target.host, target.port) {
                    Some(route) => {
                        let asked = approved(egress, route, &target, Some(req.method().as_str()));
                        if let Err(refusal) = asked.await {
                            let entry = Entry::new(
                                &self.peer,
                                req.method().as_str(),
                                &target.host,
                                target.port,
                                None,
                            );
                            refusal.record(egress, entry);
                            return refusal.response();
                        }
                        self.forward(route, target, req, false).await
                    }
                    None => {
                        let refusal = Refusal::no_route(egress, &target);
                        let path = target
                            .path
                            .as_deref()
                            .map(|p| p.split('?').next().unwrap_or(p));
                        refusal.record(
                            egress,
                            Entry::new(
                                &self.peer,
                                req.method().as_str(),
                                &target.host,
                                target.port,
                                path,
                            ),
                        );
                        refusal.response()
                    }
                }
            }
            Origin::Inspected { route, target } => {
                let route = egress.route(*route);
                let path = req
                    .uri()
                    .path_and_query()
                    .map(|p| p.as_str())
                    .unwrap_or("/");
                let target = Target {
                    path: Some(path.to_string()),
                    ..target.clone()
                };
                self.forward(route, target, req, true).await
            }
        }
    }

    /// CONNECT on a connection that already carried plain requests.
    async fn connect_upgrade(self: Arc<Self>, req: Request<Incoming>) -> Response<RespBody> {
        let egress = self.egress.clone();
        let authority = req
            .uri()
            .authority()
            .map(|a| a.to_string())
            .unwrap_or_default();
        let target = match parse_authority(&authority) {
            Ok(target) => target,
            Err(why) => {
                let refusal = Refusal::malformed(why);
                refusal.record(&egress, Entry::new(&self.peer, "CONNECT", "-", 0, None));
                return refusal.response();
            }
        };
        let entry = Entry::new(&self.peer, "CONNECT", &target.host, target.port, None);
        match open(&egress, target).await {
            Err(refusal) => {
                refusal.record(&egress, entry);
                refusal.response()
            }
            Ok(opened) => {
                // The tunnel outlives this connection's HTTP serving, so it
                // takes a connection slot of its own.
                let Ok(slot) = egress.slots.clone().try_acquire_owned() else {
                    let busy = Refusal::deny(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "connection limit".into(),
                        "too many connections at once; try again shortly".into(),
                    );
                    busy.record(&egress, entry);
                    return busy.response();
                };
                let peer = self.peer.clone();
                tokio::spawn(async move {
                    let _slot = slot;
                    if let Ok(upgraded) = hyper::upgrade::on(req).await {
                        boxed_tunnel(egress, opened, TokioIo::new(upgraded), entry, peer).await;
                    }
                });
                Response::new(RespBody::empty())
            }
        }
    }

    /// Check a request against its route, then send it upstream with the
    /// route's headers and hand back the response.
    async fn forward(
        &self,
        route: &CompiledRoute,
        target: Target,
        req: Request<Incoming>,
        tls: bool,
    ) -> Response<RespBody> {
        let egress = &self.egress;
        let path = target.path.clone().unwrap_or_else(|| "/".into());
        let method = req.method().as_str().to_string();
        // The audit line keeps the path, not the query: queries carry data, not routing.
        let bare_path = path.split('?').next().unwrap_or(&path);
        let mut entry = Entry::new(
            &self.peer,
            &method,
            &target.host,
            target.port,
            Some(bare_path),
        );
        let injections = &egress.injections[route.index];
        let verdict = if !tls && (route.inspect || !injections.is_empty()) {
            // A secret header only ever travels over TLS the proxy verified;
            // an inspected route is TLS, so plain HTTP to it is a mistake
            // at best (and cleartext to a TLS port).
            Err(if injections.is_empty() {
                "the route is inspected, so it is reached over TLS only: use https:// (CONNECT), not a plain http:// request".to_string()
            } else {
                "the route adds a secret header, which is only ever sent over verified TLS: use https:// (CONNECT), not a plain http:// request".to_string()
            })
        } else {
            route.admits(&method, &path).and_then(|()| {
                METHOD_OVERRIDE_HEADERS.iter().try_for_each(|name| {
                    req.headers()
                        .get_all(*name)
                        .iter()
                        .try_for_each(|value| route.admits_override(name, value.as_bytes()))
                })
            })
        };
        if let Err(why) = verdict {
            let shown = format!("{}:{}", show_host(&target.host), target.port);
            let refusal = Refusal::deny(
                StatusCode::FORBIDDEN,
                route.label(),
                format!(
                    "{} allows {shown} but not this request: {why}",
                    route.label()
                ),
            );
            refusal.record(egress, entry);
            return refusal.response();
        }
        entry.decision = "allow";
        entry.rule = route.label();

        let (mut parts, body) = req.into_parts();
        strip_hop_by_hop(&mut parts.headers);
        if tls {
            for (name, value) in injections {
                parts.headers.insert(name.clone(), value.clone());
            }
        }
        let default_port = if tls { 443 } else { 80 };
        let authority = match target.port {
            p if p == default_port => show_host(&target.host),
            p => format!("{}:{p}", show_host(&target.host)),
        };
        if let Ok(host) = HeaderValue::from_str(&authority) {
            parts.headers.insert(header::HOST, host);
        }
        parts.uri = match path.parse() {
            Ok(uri) => uri,
            Err(_) => {
                let refusal = Refusal::malformed(format!("cannot forward the path {path}"));
                refusal.record(egress, entry);
                return refusal.response();
            }
        };
        parts.version = Version::HTTP_11;
        let up = Arc::new(AtomicU64::new(0));
        let request = Request::from_parts(
            parts,
            UpBody {
                inner: body,
                count: up.clone(),
            },
        );

        let mut slot = self.upstream.lock().await;
        let reusable = matches!(&*slot, Some(u) if u.host == target.host && u.port == target.port && !u.sender.is_closed());
        if !reusable {
            *slot = None;
            let fresh = async {
                let tcp = dial(egress, route, &target).await?;
                if tls {
                    tls_handshake(egress, route, &target, tcp).await
                } else {
                    http_handshake(tcp)
                        .await
                        .map_err(|why| Refusal::upstream(route, StatusCode::BAD_GATEWAY, why))
                }
            };
            match fresh.await {
                Ok(sender) => *slot = Some(Upstream::new(&target, sender)),
                Err(refusal) => {
                    refusal.record(egress, entry);
                    return refusal.response();
                }
            }
        }
        let upstream = slot.as_mut().expect("the slot was filled above");
        let sent = match upstream.sender.ready().await {
            Ok(()) => upstream.sender.send_request(request).await,
            Err(err) => Err(err),
        };
        let response = match sent {
            Ok(response) => response,
            Err(err) => {
                *slot = None;
                let refusal = Refusal::upstream(
                    route,
                    StatusCode::BAD_GATEWAY,
                    format!("the upstream failed: {err}"),
                );
                refusal.record(egress, entry);
                return refusal.response();
            }
        };
        drop(slot);
        let (mut parts, body) = response.into_parts();
        strip_hop_by_hop(&mut parts.headers);
        entry.status = Some(parts.status.as_u16());
        let tracked = Tracked {
            inner: body,
            down: 0,
            up,
            record: Some((egress.clone(), entry)),
        };
        Response::from_parts(parts, RespBody::Upstream(Box::new(tracked)))
    }
}

/// Remove the headers that describe one hop, not the message (RFC 9110 §7.6.1).
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let listed: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in listed {
        headers.remove(name);
    }
    if headers.remove(header::TRANSFER_ENCODING).is_some() {
        // hyper re-frames the body; a stale length must not travel with it.
        headers.remove(header::CONTENT_LENGTH);
    }
    for name in [
        header::CONNECTION,
        header::PROXY_AUTHENTICATE,
        header::PROXY_AUTHORIZATION,
        header::TE,
        header::TRAILER,
        header::UPGRADE,
    ] {
        headers.remove(name);
    }
    headers.remove("keep-alive");
    headers.remove("proxy-connection");
}

/// A request body on its way upstream, counted for the audit log.
pub(crate) struct UpBody {
    inner: Incoming,
    count: Arc<AtomicU64>,
}

impl Body for UpBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled {
            if let Some(data) = frame.data_ref() {
                self.count.fetch_add(data.len() as u64, Ordering::Relaxed);
            }
        }
        polled
    }
    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }
    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// An upstream response body on its way to the client; when it is done (or
/// dropped) the exchange's audit entry is written with the byte counts.
pub(crate) struct Tracked {
    inner: Incoming,
    down: u64,
    up: Arc<AtomicU64>,
    record: Option<(Arc<Egress>, Entry)>,
}

impl Drop for Tracked {
    fn drop(&mut self) {
        if let Some((egress, mut entry)) = self.record.take() {
            entry.bytes_up = self.up.load(Ordering::Relaxed);
            entry.bytes_down = self.down;
            egress.audit.record(&entry);
        }
    }
}

/// What the proxy answers with: its own short text, or an upstream's body.
pub(crate) enum RespBody {
    Text(Option<Bytes>),
    Upstream(Box<Tracked>),
}

impl RespBody {
    fn text(text: String) -> RespBody {
        RespBody::Text(Some(Bytes::from(text)))
    }
    fn empty() -> RespBody {
        RespBody::Text(None)
    }
}

impl Body for RespBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        match self.get_mut() {
            RespBody::Text(text) => Poll::Ready(text.take().map(|t| Ok(Frame::data(t)))),
            RespBody::Upstream(tracked) => {
                let polled = Pin::new(&mut tracked.inner).poll_frame(cx);
                if let Poll::Ready(Some(Ok(frame))) = &polled {
                    if let Some(data) = frame.data_ref() {
                        tracked.down += data.len() as u64;
                    }
                }
                polled
            }
        }
    }
    fn is_end_stream(&self) -> bool {
        match self {
            RespBody::Text(text) => text.is_none(),
            RespBody::Upstream(tracked) => tracked.inner.is_end_stream(),
        }
    }
    fn size_hint(&self) -> SizeHint {
        match self {
            RespBody::Text(text) => {
                SizeHint::with_exact(text.as_ref().map_or(0, |t| t.len() as u64))
            }
            RespBody::Upstream(tracked) => tracked.inner.size_hint(),
        }
    }
}
