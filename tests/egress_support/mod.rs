//! Shared pieces of the egress tests: loopback HTTP and HTTPS servers that
//! echo what they received, a proxy started in-process, curl, and a small
//! Rust client that speaks CONNECT and TLS. Everything binds 127.0.0.1:0 and
//! stops when its guard drops.
#![allow(dead_code)]

use bottle::sidecar::egress::{self, Egress, EgressOptions, Listen, Listener, Policy};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// Every test's overall bound.
pub const TEST_LIMIT: Duration = Duration::from_secs(60);

/// A task that is aborted when the guard drops.
pub struct Guard(pub JoinHandle<()>);
impl Drop for Guard {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A CA made for one test, and leaf certificates it signs.
pub struct TestCa {
    cert: rcgen::Certificate,
    key: KeyPair,
    pub pem_path: PathBuf,
}

impl TestCa {
    pub fn new(dir: &Path) -> TestCa {
        let mut params = CertificateParams::default();
        params
            .distinguished_name
            .push(DnType::CommonName, "egress test upstream CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let key = KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let pem_path = dir.join("upstream-ca.pem");
        std::fs::write(&pem_path, cert.pem()).unwrap();
        TestCa {
            cert,
            key,
            pem_path,
        }
    }

    /// A rustls server config for `names`, signed by this CA.
    pub fn server_config(&self, names: &[&str]) -> Arc<rustls::ServerConfig> {
        let params =
            CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .unwrap();
        let key = KeyPair::generate().unwrap();
        let leaf = params.signed_by(&key, &self.cert, &self.key).unwrap();
        let der = rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into());
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![leaf.der().clone()], der)
            .unwrap();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Arc::new(config)
    }
}

/// What the echo server answers: the request as it arrived upstream.
async fn echo(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, hyper::Error> {
    let method = req.method().to_string();
    let path = req
        .uri()
        .path_and_query()
        .map(|p| p.to_string())
        .unwrap_or_default();
    let headers: serde_json::Map<String, serde_json::Value> = req
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.to_string(),
                serde_json::Value::String(v.to_str().unwrap_or("?").to_string()),
            )
        })
        .collect();
    let body = req.into_body().collect().await?.to_bytes();
    let reply = serde_json::json!({
        "method": method, "path": path, "headers": headers, "body_len": body.len(),
    });
    Ok(Response::new(Full::new(Bytes::from(reply.to_string()))))
}

/// A loopback HTTP/1.1 echo server (TLS when `tls` is given).
pub async fn echo_server(tls: Option<Arc<rustls::ServerConfig>>) -> (SocketAddr, Guard) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let tls = tls.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(echo);
                let builder = hyper::server::conn::http1::Builder::new();
                match tls {
                    None => {
                        let _ = builder
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    }
                    Some(config) => {
                        if let Ok(tls) =
                            tokio_rustls::TlsAcceptor::from(config).accept(stream).await
                        {
                            let _ = builder.serve_connection(TokioIo::new(tls), service).await;
                        }
                    }
                }
            });
        }
    });
    (addr, Guard(task))
}

/// A loopback TCP server that echoes bytes back (for raw tunnels).
pub async fn byte_echo_server() -> (SocketAddr, Guard) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let (mut r, mut w) = stream.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    (addr, Guard(task))
}

/// Names every test resolves to 127.0.0.1 through the proxy's override.
pub const TEST_NAMES: &[&str] = &[
    "allowed.test",
    "inspected.test",
    "internal.test",
    "other.test",
];

pub fn options(audit: Option<PathBuf>) -> EgressOptions {
    let overrides: HashMap<String, Vec<IpAddr>> = TEST_NAMES
        .iter()
        .map(|n| (n.to_string(), vec![IpAddr::from([127, 0, 0, 1])]))
        .collect();
    EgressOptions {
        audit,
        resolve_overrides: overrides,
        ..EgressOptions::default()
    }
}

/// The proxy, serving in-process on a loopback port.
pub struct Proxy {
    pub addr: SocketAddr,
    pub egress: Arc<Egress>,
    _serving: Guard,
}

impl Proxy {
    pub async fn start(policy_yaml: &str, options: EgressOptions) -> Proxy {
        let policy = Policy::from_yaml(policy_yaml).unwrap();
        let egress = Egress::new(policy, options).unwrap();
        let listener = Listener::bind(&Listen::Tcp("127.0.0.1:0".parse().unwrap()))
            .await
            .unwrap();
        let Listen::Tcp(addr) = listener.local() else {
            unreachable!("bound TCP")
        };
        let serving = tokio::spawn(egress::serve_on(
            egress.clone(),
            listener,
            std::future::pending(),
        ));
        let task = tokio::spawn(async move {
            let _ = serving.await;
        });
        Proxy {
            addr,
            egress,
            _serving: Guard(task),
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// What curl saw: the HTTP status and the body.
#[derive(Debug)]
pub struct CurlOutcome {
    pub status: u16,
    pub body: String,
    pub exit: i32,
    pub stderr: String,
}

/// Run curl with `args` (plus -s, a time limit, and the status on the last line).
pub async fn curl(args: &[&str]) -> CurlOutcome {
    let output = tokio::process::Command::new("curl")
        .args(["-s", "-S", "--max-time", "15", "-w", "\n%{http_code}"])
        .args(args)
        .kill_on_drop(true)
        .output()
        .await
        .expect("curl runs (scripts/setup installs it)");
    let text = String::from_utf8_lossy(&output.stdout).to_string();
    let (body, status) = text.rsplit_once('\n').unwrap_or(("", text.as_str()));
    CurlOutcome {
        status: status.trim().parse().unwrap_or(0),
        body: body.to_string(),
        exit: output.status.code().unwrap_or(-1),
        stderr: String::from_utf8_lossy(&output.stderr).to_string(),
    }
}

/// Send CONNECT for `authority` through the proxy; returns the proxy's status
/// line, the head's text, and the stream (open when the status is 200).
pub async fn connect(proxy: SocketAddr, authority: &str) -> (u16, String, TcpStream) {
    let mut stream = TcpStream::connect(proxy).await.unwrap();
    let request = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    // Byte by byte so nothing after the head is consumed.
    while !head.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).await.unwrap() == 0 {
            break;
        }
        head.push(byte[0]);
    }
    let text = String::from_utf8_lossy(&head).to_string();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    if status != 200 {
        // A refusal carries a body; read it for the caller's assertions.
        let mut rest = String::new();
        let _ = stream.read_to_string(&mut rest).await;
        return (status, text + &rest, stream);
    }
    (status, text, stream)
}

/// A Rust HTTPS client through the proxy: CONNECT, TLS trusting `ca_pem`,
/// one request. Returns (status, body).
pub async fn https_request(
    proxy: SocketAddr,
    host: &str,
    port: u16,
    ca_pem: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, String) {
    let (status, head, stream) = connect(proxy, &format!("{host}:{port}")).await;
    if status != 200 {
        return (status, head);
    }
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut ca_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from(host.to_string()).unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, stream)
        .await
        .unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .unwrap();
    tokio::spawn(conn);
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .header("host", host);
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    let response = sender
        .send_request(request.body(Full::new(Bytes::new())).unwrap())
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).to_string())
}

/// A Rust plain-HTTP client through the proxy, over any stream (TCP or Unix).
pub async fn http_request<S>(stream: S, url: &str) -> (u16, String)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let authority = url.split('/').nth(2).unwrap().to_string();
    let request = Request::builder()
        .uri(url)
        .header("host", authority)
        .body(Full::new(Bytes::new()))
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).to_string())
}

/// Read the audit log's lines as JSON.
pub fn audit_lines(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("every audit line is JSON"))
        .collect()
}

/// Every byte a [`recording_server`] received, over all its connections (after
/// TLS, for a TLS one).
#[derive(Clone, Default)]
pub struct Recorder(Arc<std::sync::Mutex<Vec<u8>>>);

impl Recorder {
    pub fn bytes(&self) -> Vec<u8> {
        self.0.lock().unwrap().clone()
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes()).to_string()
    }
    pub fn contains(&self, needle: &[u8]) -> bool {
        self.bytes().windows(needle.len()).any(|w| w == needle)
    }
}

/// A loopback upstream that records the raw bytes it receives and answers
/// every request head (`\r\n\r\n`) with `200 ok`; bodies are not parsed, so
/// tests send requests without one. With `tls` it first does a TLS
/// handshake; a plain one on a route marked `inspect` is "a TLS port that
/// receives plaintext".
pub async fn recording_server(
    tls: Option<Arc<rustls::ServerConfig>>,
) -> (SocketAddr, Recorder, Guard) {
    recording_server_on("127.0.0.1:0", tls).await
}

/// [`recording_server`] bound to `bind` (e.g. `0.0.0.0:0`, to be reached on
/// any of the host's addresses).
pub async fn recording_server_on(
    bind: &str,
    tls: Option<Arc<rustls::ServerConfig>>,
) -> (SocketAddr, Recorder, Guard) {
    let listener = TcpListener::bind(bind).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let recorder = Recorder::default();
    let record = recorder.clone();
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let record = record.clone();
            let tls = tls.clone();
            tokio::spawn(async move {
                match tls {
                    None => answer_heads(stream, record).await,
                    Some(config) => {
                        if let Ok(tls) =
                            tokio_rustls::TlsAcceptor::from(config).accept(stream).await
                        {
                            answer_heads(tls, record).await
                        }
                    }
                }
            });
        }
    });
    (addr, recorder, Guard(task))
}

async fn answer_heads<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    mut stream: S,
    record: Recorder,
) {
    let mut pending = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        record.0.lock().unwrap().extend_from_slice(&buf[..n]);
        if pending.is_empty() && buf[0] == 0x16 {
            // A TLS handshake at a plaintext server: answer as one would.
            let _ = stream
                .write_all(
                    b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                )
                .await;
            return;
        }
        pending.extend_from_slice(&buf[..n]);
        while let Some(end) = pending.windows(4).position(|w| w == b"\r\n\r\n") {
            pending.drain(..end + 4);
            let reply = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
            if stream.write_all(reply).await.is_err() {
                return;
            }
        }
    }
}

/// A TLS client stream to `host` trusting `ca_pem`, over `stream` (e.g. a
/// CONNECT tunnel through the proxy).
pub async fn tls_client(
    stream: TcpStream,
    host: &str,
    ca_pem: &str,
) -> tokio_rustls::client::TlsStream<TcpStream> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_pemfile::certs(&mut ca_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let name = rustls::pki_types::ServerName::try_from(host.to_string()).unwrap();
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, stream)
        .await
        .unwrap()
}

/// Read one HTTP/1.1 response (head and `Content-Length` body) from `stream`;
/// returns its status and text, or `None` when the stream closed first.
pub async fn read_response<S: tokio::io::AsyncRead + Unpin>(
    stream: &mut S,
) -> Option<(u16, String)> {
    let mut got = Vec::new();
    let mut byte = [0u8; 1];
    while !got.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte).await {
            Ok(1) => got.push(byte[0]),
            _ => return None,
        }
    }
    let head = String::from_utf8_lossy(&got).to_string();
    let status = head.split(' ').nth(1)?.parse().ok()?;
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    stream.read_exact(&mut body).await.ok()?;
    Some((status, head + &String::from_utf8_lossy(&body)))
}
