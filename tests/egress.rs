//! The egress proxy against real clients (curl, a Rust client) and real
//! loopback HTTP/HTTPS servers: allowlisting, refusals, inspection with
//! method/path rules and header injection, the SSRF guard, limits, the audit
//! log, and the `bottle sidecar egress` command.

mod egress_support;

use egress_support::*;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A diagnostic as one line: miette wraps long messages across lines.
fn flat(stderr: &[u8]) -> String {
    String::from_utf8_lossy(stderr)
        .replace('│', " ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// Run a test body within the overall limit.
async fn bounded<F: std::future::Future<Output = ()>>(body: F) {
    tokio::time::timeout(TEST_LIMIT, body)
        .await
        .expect("test exceeded its time limit");
}

fn plain_policy(http_port: u16, tls_port: u16) -> String {
    format!(
        "version: 1\nbottle: test-bottle\nroutes:\n  - host: allowed.test\n    ports: [{http_port}, {tls_port}]\n    addresses: [127.0.0.1]\n"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_allowed_host_works_over_http_and_connect() {
    bounded(async {
        let dir = tempfile::tempdir().unwrap();
        let ca = TestCa::new(dir.path());
        let (http, _h) = echo_server(None).await;
        let (https, _s) = echo_server(Some(ca.server_config(&["allowed.test"]))).await;
        let proxy = Proxy::start(&plain_policy(http.port(), https.port()), options(None)).await;

        let plain = curl(&[
            "-x",
            &proxy.url(),
            &format!("http://allowed.test:{}/hello?x=1", http.port()),
        ])
        .await;
        assert_eq!(plain.status, 200, "{plain:?}");
        let echoed: serde_json::Value = serde_json::from_str(&plain.body).unwrap();
        assert_eq!(echoed["path"], "/hello?x=1");
        assert_eq!(
            echoed["headers"]["host"],
            format!("allowed.test:{}", http.port())
        );

        let ca_path = ca.pem_path.to_str().unwrap();
        let tunneled = curl(&[
            "-x",
            &proxy.url(),
            "--cacert",
            ca_path,
            &format!("https://allowed.test:{}/tls", https.port()),
        ])
        .await;
        assert_eq!(tunneled.status, 200, "{tunneled:?}");
        let echoed: serde_json::Value = serde_json::from_str(&tunneled.body).unwrap();
        assert_eq!(echoed["path"], "/tls");

        // The same through a Rust client: CONNECT, then TLS end to end with the upstream.
        let upstream_ca = std::fs::read_to_string(&ca.pem_path).unwrap();
        let (status, body) = https_request(
            proxy.addr,
            "allowed.test",
            https.port(),
            &upstream_ca,
            "POST",
            "/rust",
            &[],
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let echoed: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            (echoed["method"].as_str(), echoed["path"].as_str()),
            (Some("POST"), Some("/rust"))
        );
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn denied_host_and_port_get_403_naming_them() {
    bounded(async {
        let (http, _h) = echo_server(None).await;
        let proxy = Proxy::start(&plain_policy(http.port(), 1), options(None)).await;

        let other = curl(&[
            "-x",
            &proxy.url(),
            &format!("http://other.test:{}/", http.port()),
        ])
        .await;
        assert_eq!(other.status, 403);
        assert!(
            other
                .body
                .contains(&format!("no route allows other.test:{}", http.port())),
            "{other:?}"
        );

        let (status, body, _) = connect(proxy.addr, "other.test:443").await;
        assert_eq!(status, 403);
        assert!(body.contains("no route allows other.test:443"), "{body}");

        // The allowed host on a port no route lists.
        let (status, body, _) =
            connect(proxy.addr, &format!("allowed.test:{}", http.port() ^ 1)).await;
        assert_eq!(status, 403);
        assert!(body.contains("other ports only"), "{body}");
        let wrong_port = curl(&["-x", &proxy.url(), "http://allowed.test:8/"]).await;
        assert_eq!(wrong_port.status, 403);
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_matching_is_case_insensitive_tolerates_trailing_dot_and_wildcards() {
    bounded(async {
        let (http, _h) = echo_server(None).await;
        let port = http.port();
        let policy = format!(
            "version: 1\nbottle: b\nroutes:\n  - host: '*.wild.test'\n    ports: [{port}]\n    addresses: [127.0.0.1]\n  - host: Allowed.Test\n    ports: [{port}]\n    addresses: [127.0.0.1]\n"
        );
        let mut options = options(None);
        options.resolve_overrides.insert("api.wild.test".into(), vec![[127, 0, 0, 1].into()]);
        options.resolve_overrides.insert("wild.test".into(), vec![[127, 0, 0, 1].into()]);
        let proxy = Proxy::start(&policy, options).await;
        for (url, want) in [
            (format!("http://ALLOWED.test.:{port}/"), 200),
            (format!("http://api.wild.test:{port}/"), 200),
            (format!("http://wild.test:{port}/"), 403),
        ] {
            let got = curl(&["-x", &proxy.url(), &url]).await;
            assert_eq!(got.status, want, "{url}: {got:?}");
        }
    })
    .await
}

fn inspected_policy(port: u16, secret_file: &std::path::Path, ca: &std::path::Path) -> String {
    format!(
        "version: 1
bottle: test-bottle
routes:
  - host: inspected.test
    ports: [{port}]
    inspect: true
    methods: [GET]
    paths: [\"/v1/*\"]
    headers:
      - name: x-api-key
        secret: api
    addresses: [127.0.0.1]
secrets:
  api: {{ file: {} }}
upstream_ca: {}
",
        secret_file.display(),
        ca.display()
    )
}

const SECRET: &str = "sk-test-0123456789-very-secret";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inspected_route_enforces_methods_paths_and_injects_the_secret() {
    bounded(async {
        let dir = tempfile::tempdir().unwrap();
        let ca = TestCa::new(dir.path());
        let secret_file = dir.path().join("api-key");
        std::fs::write(&secret_file, format!("{SECRET}\n")).unwrap();
        let audit = dir.path().join("audit.jsonl");
        let (https, _s) = echo_server(Some(ca.server_config(&["inspected.test"]))).await;
        let port = https.port();
        let proxy = Proxy::start(
            &inspected_policy(port, &secret_file, &ca.pem_path),
            options(Some(audit.clone())),
        )
        .await;
        let bottle_ca = proxy.egress.ca_certificate_pem();
        let bottle_ca_path = dir.path().join("bottle-ca.pem");
        std::fs::write(&bottle_ca_path, &bottle_ca).unwrap();

        // curl trusts only the bottle's CA: the certificate it sees is minted by the proxy.
        let url = format!("https://inspected.test:{port}/v1/messages");
        let get = curl(&[
            "-x",
            &proxy.url(),
            "--cacert",
            bottle_ca_path.to_str().unwrap(),
            &url,
        ])
        .await;
        assert_eq!(get.status, 200, "{get:?}");
        let echoed: serde_json::Value = serde_json::from_str(&get.body).unwrap();
        assert_eq!(
            echoed["headers"]["x-api-key"], SECRET,
            "the upstream got the injected header"
        );

        let post = curl(&[
            "-x",
            &proxy.url(),
            "--cacert",
            bottle_ca_path.to_str().unwrap(),
            "-X",
            "POST",
            "-d",
            "x",
            &url,
        ])
        .await;
        assert_eq!(post.status, 403, "{post:?}");
        assert!(post.body.contains("method POST is not in GET"), "{post:?}");

        // The Rust client: a path outside the pattern, then a client-sent key that must be replaced.
        let (status, body) = https_request(
            proxy.addr,
            "inspected.test",
            port,
            &bottle_ca,
            "GET",
            "/admin",
            &[],
        )
        .await;
        assert_eq!(status, 403, "{body}");
        assert!(body.contains("path /admin matches none of /v1/*"), "{body}");
        let (status, body) = https_request(
            proxy.addr,
            "inspected.test",
            port,
            &bottle_ca,
            "GET",
            "/v1/../admin",
            &[],
        )
        .await;
        assert_eq!(status, 403, "{body}");
        let (status, body) = https_request(
            proxy.addr,
            "inspected.test",
            port,
            &bottle_ca,
            "GET",
            "/v1/x",
            &[("x-api-key", "forged")],
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let echoed: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(echoed["headers"]["x-api-key"], SECRET);

        let audit_text = std::fs::read_to_string(&audit).unwrap();
        assert!(
            !audit_text.contains(SECRET),
            "the secret's value leaked into the audit log"
        );
        let lines = audit_lines(&audit);
        assert!(lines
            .iter()
            .any(|l| l["method"] == "POST" && l["decision"] == "deny"));
        assert!(lines.iter().any(|l| l["method"] == "GET"
            && l["path"] == "/v1/messages"
            && l["decision"] == "allow"));
        assert!(lines
            .iter()
            .all(|l| l["bottle"] == "test-bottle" && l["time"].is_string()));
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inspected_upstream_with_an_untrusted_certificate_is_refused() {
    bounded(async {
        let dir = tempfile::tempdir().unwrap();
        let trusted = TestCa::new(dir.path());
        let rogue_dir = tempfile::tempdir().unwrap();
        let rogue = TestCa::new(rogue_dir.path());
        let secret_file = dir.path().join("k");
        std::fs::write(&secret_file, "v").unwrap();
        let (https, _s) = echo_server(Some(rogue.server_config(&["inspected.test"]))).await;
        let proxy = Proxy::start(
            &inspected_policy(https.port(), &secret_file, &trusted.pem_path),
            options(None),
        )
        .await;
        let (status, body, _) =
            connect(proxy.addr, &format!("inspected.test:{}", https.port())).await;
        assert_eq!(status, 502, "{body}");
        assert!(body.contains("TLS with inspected.test failed"), "{body}");
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_resolving_to_internal_addresses_are_refused_unless_listed() {
    bounded(async {
        let (http, _h) = echo_server(None).await;
        let port = http.port();
        let policy = format!(
            "version: 1\nbottle: b\nroutes:\n  - host: internal.test\n    ports: [{port}]\n  - host: 127.0.0.1\n    ports: [{port}]\n  - host: allowed.test\n    ports: [{port}]\n    addresses: ['127.0.0.1']\n"
        );
        let mut options = options(None);
        options.resolve_overrides.insert("metadata.test".into(), vec![[169, 254, 169, 254].into()]);
        let proxy = Proxy::start(&policy, options).await;

        let refused = curl(&["-x", &proxy.url(), &format!("http://internal.test:{port}/")]).await;
        assert_eq!(refused.status, 403, "{refused:?}");
        assert!(refused.body.contains("127.0.0.1, a loopback address"), "{refused:?}");
        let (status, body, _) = connect(proxy.addr, &format!("internal.test:{port}")).await;
        assert_eq!(status, 403);
        assert!(body.contains("loopback"), "{body}");

        // Named explicitly: as the route's host, or in its addresses.
        let literal = curl(&["-x", &proxy.url(), &format!("http://127.0.0.1:{port}/")]).await;
        assert_eq!(literal.status, 200, "{literal:?}");
        let listed = curl(&["-x", &proxy.url(), &format!("http://allowed.test:{port}/")]).await;
        assert_eq!(listed.status, 200, "{listed:?}");
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_malformed_requests_leaves_the_proxy_serving() {
    bounded(async {
        let (http, _h) = echo_server(None).await;
        let proxy = Proxy::start(&plain_policy(http.port(), 1), options(None)).await;
        let garbage: Vec<Vec<u8>> = vec![
            b"\x16\x03\x01\x02\x00garbage\r\n\r\n".to_vec(),
            b"GET\r\n\r\n".to_vec(),
            b"CONNECT nohost HTTP/1.1\r\n\r\n".to_vec(),
            b"CONNECT :443 HTTP/1.1\r\n\r\n".to_vec(),
            b"CONNECT a.test:99999 HTTP/1.1\r\n\r\n".to_vec(),
            b"GET /relative HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
            b"GET http://allowed.test:1/ HTTP/1.1\r\nBad Header\r\n\r\n".to_vec(),
            [
                b"GET http://allowed.test/ HTTP/1.1\r\nX: ".to_vec(),
                vec![b'a'; 80 * 1024],
                b"\r\n\r\n".to_vec(),
            ]
            .concat(),
        ];
        let mut floods = Vec::new();
        for round in 0..40 {
            for request in &garbage {
                let request = request.clone();
                let addr = proxy.addr;
                floods.push(tokio::spawn(async move {
                    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
                    let _ = stream.write_all(&request).await;
                    // Half-close, so a connection kept alive after its answer ends too.
                    let _ = stream.shutdown().await;
                    let mut reply = Vec::new();
                    let _ = tokio::time::timeout(
                        Duration::from_secs(10),
                        stream.read_to_end(&mut reply),
                    )
                    .await;
                    let sent =
                        String::from_utf8_lossy(&request[..request.len().min(60)]).to_string();
                    (
                        round,
                        format!("{} <- {sent:?}", String::from_utf8_lossy(&reply)),
                    )
                }));
            }
        }
        for flood in floods {
            let (_, reply) = flood.await.unwrap();
            let status: u16 = reply
                .split(' ')
                .nth(1)
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            assert!(
                matches!(status, 400 | 403 | 431),
                "unexpected reply to garbage: {reply:?}"
            );
        }
        let ok = curl(&[
            "-x",
            &proxy.url(),
            &format!("http://allowed.test:{}/still", http.port()),
        ])
        .await;
        assert_eq!(ok.status, 200, "{ok:?}");
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_cap_connections_and_close_idle_tunnels() {
    bounded(async {
        let (echo, _e) = byte_echo_server().await;
        let mut options = options(None);
        options.limits.max_tunnels = 2;
        options.limits.tunnel_idle = Duration::from_millis(1500);
        options.limits.header_timeout = Duration::from_secs(2);
        let proxy = Proxy::start(&plain_policy(echo.port(), 1), options).await;

        let (status, _, mut first) =
            connect(proxy.addr, &format!("allowed.test:{}", echo.port())).await;
        assert_eq!(status, 200);
        first.write_all(b"ping").await.unwrap();
        let mut pong = [0u8; 4];
        first.read_exact(&mut pong).await.unwrap();
        assert_eq!(&pong, b"ping");
        let _second = tokio::net::TcpStream::connect(proxy.addr).await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        let (status, body, _) = connect(proxy.addr, &format!("allowed.test:{}", echo.port())).await;
        assert_eq!(status, 503, "{body}");

        // The idle tunnel is closed by the proxy.
        let mut rest = Vec::new();
        let closed =
            tokio::time::timeout(Duration::from_secs(5), first.read_to_end(&mut rest)).await;
        assert!(closed.is_ok(), "an idle tunnel stayed open");
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_on_a_unix_socket() {
    bounded(async {
        let dir = tempfile::tempdir().unwrap();
        let (http, _h) = echo_server(None).await;
        let (echo, _e) = byte_echo_server().await;
        let policy =
            bottle::sidecar::egress::Policy::from_yaml(&plain_policy(http.port(), echo.port()))
                .unwrap();
        let egress = bottle::sidecar::egress::Egress::new(policy, options(None)).unwrap();
        let socket = dir.path().join("egress.sock");
        let listen: bottle::sidecar::egress::Listen =
            format!("unix:{}", socket.display()).parse().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let serving = tokio::spawn(bottle::sidecar::egress::serve(egress, listen, async {
            let _ = stopped.await;
        }));
        let mut stream = None;
        for _ in 0..100 {
            match tokio::net::UnixStream::connect(&socket).await {
                Ok(s) => {
                    stream = Some(s);
                    break;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
        let (status, body) = http_request(
            stream.expect("the socket appears"),
            &format!("http://allowed.test:{}/unix", http.port()),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let unix_denied = http_request(
            tokio::net::UnixStream::connect(&socket).await.unwrap(),
            "http://other.test/",
        )
        .await;
        assert_eq!(unix_denied.0, 403);
        // A CONNECT tunnel from the Unix socket to a TCP upstream (the splice relay).
        let mut tunnel = tokio::net::UnixStream::connect(&socket).await.unwrap();
        let authority = format!("allowed.test:{}", echo.port());
        tunnel
            .write_all(
                format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n\r\n").as_bytes(),
            )
            .await
            .unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") && tunnel.read(&mut byte).await.unwrap() == 1 {
            head.push(byte[0]);
        }
        assert!(
            head.starts_with(b"HTTP/1.1 200"),
            "{}",
            String::from_utf8_lossy(&head)
        );
        let data = vec![b'u'; 3 * 1024 * 1024];
        let (mut reader, mut writer) = tunnel.into_split();
        let sent = data.clone();
        let writing = tokio::spawn(async move {
            writer.write_all(&sent).await.unwrap();
            writer.shutdown().await.unwrap();
        });
        let mut back = Vec::new();
        reader.read_to_end(&mut back).await.unwrap();
        writing.await.unwrap();
        assert!(
            back == data,
            "the tunnel over the Unix socket altered the bytes"
        );

        stop.send(()).unwrap();
        serving.await.unwrap().unwrap();
        assert!(!socket.exists(), "the socket file is removed on shutdown");
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_runs_the_sidecar_and_rejects_bad_policies() {
    bounded(async {
        let dir = tempfile::tempdir().unwrap();
        let (http, _h) = echo_server(None).await;
        let bin = env!("CARGO_BIN_EXE_bottle");

        let bad = dir.path().join("bad.yaml");
        std::fs::write(&bad, "version: 1\nbottle: b\nroutes:\n  - host: a.test\n    ports: [80]\n    inspect: true\n    headers: [{name: x-k, secret: missing}]\n").unwrap();
        let out = tokio::process::Command::new(bin)
            .args(["sidecar", "egress", "--policy", bad.to_str().unwrap(), "--listen", "127.0.0.1:0"])
            .output()
            .await
            .unwrap();
        assert_eq!(out.status.code(), Some(1));
        assert!(flat(&out.stderr).contains("secret `missing`, which is not declared"), "{}", flat(&out.stderr));

        let unset = dir.path().join("unset.yaml");
        std::fs::write(&unset, "version: 1\nbottle: b\nsecrets:\n  k: { env: BOTTLE_EGRESS_SURELY_UNSET }\n").unwrap();
        let out = tokio::process::Command::new(bin)
            .args(["sidecar", "egress", "--policy", unset.to_str().unwrap(), "--listen", "127.0.0.1:0"])
            .output()
            .await
            .unwrap();
        assert_eq!(out.status.code(), Some(1));
        assert!(flat(&out.stderr).contains("BOTTLE_EGRESS_SURELY_UNSET, which is not set"), "{}", flat(&out.stderr));

        // 127.0.0.1 literal route: this check does not depend on test-only name overrides.
        let good = dir.path().join("egress.yaml");
        std::fs::write(&good, format!("version: 1\nbottle: cli\nroutes:\n  - host: 127.0.0.1\n    ports: [{}]\n", http.port())).unwrap();
        let audit = dir.path().join("audit.jsonl");
        let ca = dir.path().join("ca.pem");
        let mut child = tokio::process::Command::new(bin)
            .args(["sidecar", "egress", "--policy", good.to_str().unwrap(), "--listen", "127.0.0.1:0"])
            .args(["--audit", audit.to_str().unwrap(), "--ca-cert", ca.to_str().unwrap()])
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let mut line = Vec::new();
        let mut byte = [0u8; 1];
        while !line.ends_with(b"\n") && stdout.read(&mut byte).await.unwrap() == 1 {
            line.push(byte[0]);
        }
        let line = String::from_utf8(line).unwrap();
        let addr = line.trim().rsplit(' ').next().unwrap().to_string();
        let ok = curl(&["-x", &format!("http://{addr}"), &format!("http://127.0.0.1:{}/cli", http.port())]).await;
        assert_eq!(ok.status, 200, "{ok:?}");
        assert!(std::fs::read_to_string(&ca).unwrap().contains("BEGIN CERTIFICATE"));
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(child.id().unwrap() as i32), nix::sys::signal::Signal::SIGTERM).unwrap();
        let status = tokio::time::timeout(Duration::from_secs(10), child.wait()).await.unwrap().unwrap();
        assert!(status.success());
        let lines = audit_lines(&audit);
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0]["decision"], "allow");
        assert_eq!(lines[0]["bottle"], "cli");
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tunnel_carries_bulk_data_both_ways_and_the_audit_counts_it() {
    bounded(async {
        let dir = tempfile::tempdir().unwrap();
        let audit = dir.path().join("audit.jsonl");
        let (echo, _e) = byte_echo_server().await;
        let proxy = Proxy::start(&plain_policy(echo.port(), 1), options(Some(audit.clone()))).await;
        let (status, _, stream) =
            connect(proxy.addr, &format!("allowed.test:{}", echo.port())).await;
        assert_eq!(status, 200);
        let size = 8 * 1024 * 1024 + 17;
        let data: Vec<u8> = (0..size).map(|i| (i * 7 % 251) as u8).collect();
        let (mut reader, mut writer) = stream.into_split();
        let sent = data.clone();
        let writing = tokio::spawn(async move {
            writer.write_all(&sent).await.unwrap();
            // Half-close: the echo server sees EOF, finishes, and closes its side.
            writer.shutdown().await.unwrap();
        });
        let mut back = Vec::new();
        reader.read_to_end(&mut back).await.unwrap();
        writing.await.unwrap();
        assert_eq!(back.len(), data.len());
        assert!(back == data, "the tunnel altered the bytes");
        // The audit line is written when the tunnel closes.
        let mut line = None;
        for _ in 0..100 {
            line = audit_lines(&audit)
                .into_iter()
                .find(|l| l["method"] == "CONNECT");
            if line.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let line = line.expect("an audit line for the tunnel");
        assert_eq!(line["bytes_up"], size as u64);
        assert_eq!(line["bytes_down"], size as u64);
        assert_eq!(line["decision"], "allow");
    })
    .await
}

// ---- Hardening (issue 9): each attack against a live proxy whose upstreams
// record the raw bytes they receive.

/// A policy with one inspected route to `inspected.test:port` that adds the
/// `x-api-key` secret, allows GET and POST and paths under `/v1/`.
fn secret_policy(port: u16, secret_file: &std::path::Path, ca: &std::path::Path) -> String {
    format!(
        "version: 1
bottle: hardening
routes:
  - host: inspected.test
    ports: [{port}]
    inspect: true
    methods: [GET, POST]
    paths: [\"/v1/*\"]
    headers:
      - name: x-api-key
        secret: api
    addresses: [127.0.0.1]
secrets:
  api: {{ file: {} }}
upstream_ca: {}
",
        secret_file.display(),
        ca.display()
    )
}

/// Send raw bytes on a fresh connection to the proxy, half-close, and read
/// the whole answer.
async fn raw_exchange(proxy: std::net::SocketAddr, bytes: &[u8]) -> String {
    let mut stream = tokio::net::TcpStream::connect(proxy).await.unwrap();
    stream.write_all(bytes).await.unwrap();
    let _ = stream.shutdown().await;
    let mut reply = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut reply)).await;
    String::from_utf8_lossy(&reply).to_string()
}

async fn wait_for_audit(
    audit: &std::path::Path,
    want: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    for _ in 0..150 {
        if let Some(line) = audit_lines(audit).into_iter().find(|l| want(l)) {
            return line;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!(
        "no such audit line in {}",
        std::fs::read_to_string(audit).unwrap_or_default()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_header_only_ever_travels_over_verified_tls() {
    bounded(async {
        let dir = tempfile::tempdir().unwrap();
        let ca = TestCa::new(dir.path());
        let secret_file = dir.path().join("api-key");
        std::fs::write(&secret_file, format!("{SECRET}\n")).unwrap();
        let audit = dir.path().join("audit.jsonl");
        // The route's TLS port, where a plaintext server listens and records.
        let (tls_port, cleartext, _c) = recording_server(None).await;
        let proxy = Proxy::start(
            &secret_policy(tls_port.port(), &secret_file, &ca.pem_path),
            options(Some(audit.clone())),
        )
        .await;
        let port = tls_port.port();

        // A plain absolute-form request to the inspected route.
        let plain = curl(&["-x", &proxy.url(), &format!("http://inspected.test:{port}/v1/ok")]).await;
        assert_eq!(plain.status, 403, "{plain:?}");
        assert!(plain.body.contains("only ever sent over verified TLS"), "{plain:?}");
        let reply = raw_exchange(
            proxy.addr,
            format!("POST http://INSPECTED.test.:{port}/v1/ok HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n").as_bytes(),
        )
        .await;
        assert!(reply.starts_with("HTTP/1.1 403"), "{reply}");
        // CONNECT: the proxy's TLS to the plaintext port fails, so nothing is sent.
        let (status, body, _) = connect(proxy.addr, &format!("inspected.test:{port}")).await;
        assert_eq!(status, 502, "{body}");

        assert!(!cleartext.contains(SECRET.as_bytes()), "the secret reached a plaintext socket");
        assert!(!cleartext.contains(b"/v1/ok"), "a request reached the TLS port in clear: {}", cleartext.text());
        let denied = wait_for_audit(&audit, |l| l["path"] == "/v1/ok" && l["decision"] == "deny").await;
        assert_eq!(denied["status"], 403);
        assert!(denied["reason"].as_str().unwrap().contains("verified TLS"), "{denied}");

        // Over TLS the same route works, and the upstream gets the secret.
        let (tls_upstream, decrypted, _t) =
            recording_server(Some(ca.server_config(&["inspected.test"]))).await;
        let proxy = Proxy::start(
            &secret_policy(tls_upstream.port(), &secret_file, &ca.pem_path),
            options(None),
        )
        .await;
        let (status, body) = https_request(
            proxy.addr,
            "inspected.test",
            tls_upstream.port(),
            &proxy.egress.ca_certificate_pem(),
            "GET",
            "/v1/ok",
            &[],
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert!(decrypted.text().contains(&format!("x-api-key: {SECRET}")), "{}", decrypted.text());
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn method_and_path_rules_without_inspect_are_refused_when_the_policy_loads() {
    bounded(async {
        let dir = tempfile::tempdir().unwrap();
        let bin = env!("CARGO_BIN_EXE_bottle");
        for rule in ["methods: [GET]", "paths: ['/v1/*']"] {
            let policy = dir.path().join("egress.yaml");
            std::fs::write(
                &policy,
                format!("version: 1\nbottle: b\nroutes:\n  - host: api.test\n    ports: [443]\n    {rule}\n"),
            )
            .unwrap();
            let out = tokio::process::Command::new(bin)
                .args(["sidecar", "egress", "--policy", policy.to_str().unwrap(), "--listen", "127.0.0.1:0"])
                .output()
                .await
                .unwrap();
            assert_eq!(out.status.code(), Some(1));
            let text = flat(&out.stderr);
            let field = rule.split(':').next().unwrap();
            assert!(
                text.contains(&format!("routes[0] (api.test): `{field}` can only be enforced on an inspected route")),
                "{text}"
            );
            assert!(text.contains("add `inspect: true`"), "{text}");
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn segments_that_servers_normalize_to_dot_segments_are_refused() {
    bounded(async {
        let dir = tempfile::tempdir().unwrap();
        let ca = TestCa::new(dir.path());
        let secret_file = dir.path().join("k");
        std::fs::write(&secret_file, SECRET).unwrap();
        let (upstream, recorded, _u) =
            recording_server(Some(ca.server_config(&["inspected.test"]))).await;
        let proxy = Proxy::start(
            &secret_policy(upstream.port(), &secret_file, &ca.pem_path),
            options(None),
        )
        .await;
        let bottle_ca = proxy.egress.ca_certificate_pem();
        for path in [
            "/v1/..;/admin",
            "/v1/.;/admin",
            "/v1/..;jsessionid=0/admin",
            "/v1/%2e%2e;/admin",
            "/v1/..%3b/admin",
            "/v1/%2E%2E%3B/admin",
            "/v1/%252e%252e/admin",
        ] {
            let (status, body) = https_request(
                proxy.addr,
                "inspected.test",
                upstream.port(),
                &bottle_ca,
                "GET",
                path,
                &[],
            )
            .await;
            assert_eq!(status, 403, "{path}: {body}");
            assert!(
                body.contains("which servers read as `.` or `..`"),
                "{path}: {body}"
            );
        }
        let (status, body) = https_request(
            proxy.addr,
            "inspected.test",
            upstream.port(),
            &bottle_ca,
            "GET",
            "/v1/ok;v=1",
            &[],
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert!(!recorded.text().contains("admin"), "{}", recorded.text());
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn method_override_headers_must_name_an_allowed_method() {
    bounded(async {
        let dir = tempfile::tempdir().unwrap();
        let ca = TestCa::new(dir.path());
        let secret_file = dir.path().join("k");
        std::fs::write(&secret_file, SECRET).unwrap();
        let (upstream, recorded, _u) =
            recording_server(Some(ca.server_config(&["inspected.test"]))).await;
        let proxy = Proxy::start(
            &secret_policy(upstream.port(), &secret_file, &ca.pem_path),
            options(None),
        )
        .await;
        let bottle_ca = proxy.egress.ca_certificate_pem();
        for (name, value) in [
            ("X-HTTP-Method-Override", "DELETE"),
            ("x-http-method", "delete"),
            ("X-Method-Override", "PUT"),
            ("X-HTTP-Method-Override", "GET, DELETE"),
        ] {
            let (status, body) = https_request(
                proxy.addr,
                "inspected.test",
                upstream.port(),
                &bottle_ca,
                "POST",
                "/v1/x",
                &[(name, value)],
            )
            .await;
            assert_eq!(status, 403, "{name}: {value}: {body}");
            assert!(body.contains("which is not in GET, POST"), "{body}");
        }
        let (status, body) = https_request(
            proxy.addr,
            "inspected.test",
            upstream.port(),
            &bottle_ca,
            "POST",
            "/v1/x",
            &[("X-HTTP-Method-Override", "get")],
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let seen = recorded.text().to_ascii_uppercase();
        assert!(!seen.contains("DELETE") && !seen.contains("PUT"), "{seen}");
    })
    .await
}

/// Send a request with no body on `stream` and read its answer.
async fn ask<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(
    stream: &mut S,
    request: &str,
) -> Option<(u16, String)> {
    stream.write_all(request.as_bytes()).await.unwrap();
    stream.flush().await.unwrap();
    read_response(stream).await
}

/// The head-limit checks on one connection type: `open` gives a connection
/// on which `target` requests are served after a first request succeeded.
async fn check_head_limits<S, F, Fut>(open: F, target: &str, host: &str)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = S>,
{
    let request = |path: &str, extra: &str| {
        format!("GET {target}{path} HTTP/1.1\r\nHost: {host}\r\n{extra}\r\n")
    };
    // A second head over the limit.
    let mut conn = open().await;
    let first = ask(&mut conn, &request("/v1/one", "")).await;
    assert_eq!(first.as_ref().map(|r| r.0), Some(200), "{first:?}");
    let big = format!("X-Big: {}\r\n", "a".repeat(70 * 1024));
    let second = ask(&mut conn, &request("/v1/two", &big)).await;
    assert_eq!(second.as_ref().map(|r| r.0), Some(431), "{second:?}");

    // A second head that never completes.
    let mut conn = open().await;
    let first = ask(&mut conn, &request("/v1/one", "")).await;
    assert_eq!(first.as_ref().map(|r| r.0), Some(200), "{first:?}");
    conn.write_all(format!("GET {target}/v1/slow HTTP/1.1\r\nX-Slow: ").as_bytes())
        .await
        .unwrap();
    conn.flush().await.unwrap();
    let started = std::time::Instant::now();
    let slow = tokio::time::timeout(Duration::from_secs(10), read_response(&mut conn))
        .await
        .unwrap();
    let (status, text) = slow.expect("a 408 answer");
    assert_eq!(status, 408, "{text}");
    assert!(
        text.contains("no complete request head within 1s"),
        "{text}"
    );
    assert!(started.elapsed() >= Duration::from_millis(900));

    // An idle kept-alive connection is closed without an answer.
    let mut conn = open().await;
    let first = ask(&mut conn, &request("/v1/one", "")).await;
    assert_eq!(first.as_ref().map(|r| r.0), Some(200), "{first:?}");
    let idle = tokio::time::timeout(Duration::from_secs(10), read_response(&mut conn))
        .await
        .unwrap();
    assert!(idle.is_none(), "{idle:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_head_has_the_same_limits_and_answers() {
    bounded(async {
        let dir = tempfile::tempdir().unwrap();
        let ca = TestCa::new(dir.path());
        let audit = dir.path().join("audit.jsonl");
        let (plain, _p, _pg) = recording_server(None).await;
        let (tls, _t, _tg) = recording_server(Some(ca.server_config(&["inspected.test"]))).await;
        let policy = format!(
            "version: 1\nbottle: limits\nroutes:\n  - host: allowed.test\n    ports: [{}]\n    addresses: [127.0.0.1]\n  - host: inspected.test\n    ports: [{}]\n    inspect: true\n    addresses: [127.0.0.1]\nupstream_ca: {}\n",
            plain.port(),
            tls.port(),
            ca.pem_path.display()
        );
        let mut options = options(Some(audit.clone()));
        options.limits.header_timeout = Duration::from_secs(1);
        let proxy = Proxy::start(&policy, options).await;
        let addr = proxy.addr;

        // Kept-alive plain connections.
        let target = format!("http://allowed.test:{}", plain.port());
        check_head_limits(
            || async move { tokio::net::TcpStream::connect(addr).await.unwrap() },
            &target,
            &format!("allowed.test:{}", plain.port()),
        )
        .await;

        // Requests inside an inspected tunnel.
        let bottle_ca = proxy.egress.ca_certificate_pem();
        let authority = format!("inspected.test:{}", tls.port());
        let (ca_text, authority_for) = (bottle_ca.clone(), authority.clone());
        check_head_limits(
            move || {
                let (ca_text, authority) = (ca_text.clone(), authority_for.clone());
                async move {
                    let (status, head, stream) = connect(addr, &authority).await;
                    assert_eq!(status, 200, "{head}");
                    tls_client(stream, "inspected.test", &ca_text).await
                }
            },
            "",
            "inspected.test",
        )
        .await;

        wait_for_audit(&audit, |_| audit_lines(&audit).iter().filter(|l| l["rule"] == "header size limit").count() == 2).await;
        let lines = audit_lines(&audit);
        let timeouts: Vec<_> = lines.iter().filter(|l| l["rule"] == "header timeout").collect();
        assert_eq!(timeouts.len(), 2, "one 408 per slow head, none for idle connections: {lines:?}");
        assert!(timeouts.iter().all(|l| l["status"] == 408 && l["decision"] == "deny"));
        assert!(timeouts.iter().any(|l| l["host"] == "inspected.test"), "{timeouts:?}");
        let too_large = lines.iter().filter(|l| l["rule"] == "header size limit").count();
        assert_eq!(too_large, 2, "{lines:?}");
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hosts_own_addresses_and_special_ranges_are_refused_and_addresses_pin() {
    bounded(async {
        let (upstream, recorded, _u) = recording_server_on("0.0.0.0:0", None).await;
        let port = upstream.port();
        let own = bottle::sidecar::egress::ssrf::HostAddresses::read()
            .addresses()
            .find(|ip| ip.is_ipv4() && !ip.is_loopback());
        let own_text = own.map_or("127.0.0.1".to_string(), |ip| ip.to_string());
        let policy = format!(
            "version: 1\nbottle: b\nroutes:\n  - host: self.test\n    ports: [{port}]\n  - host: '*.special.test'\n    ports: [{port}]\n  - host: pinned.test\n    ports: [{port}]\n    addresses: [127.0.0.1]\n  - host: own.test\n    ports: [{port}]\n    addresses: [{own_text}]\n  - host: '*.wild.test'\n    ports: [{port}]\n    addresses: [127.0.0.1]\n"
        );
        let mut options = options(None);
        let ip = |s: &str| s.parse::<std::net::IpAddr>().unwrap();
        for (name, addr) in [
            ("doc1.special.test", "192.0.2.10"),
            ("doc2.special.test", "198.51.100.10"),
            ("doc3.special.test", "203.0.113.10"),
            ("bench.special.test", "198.18.0.10"),
            ("cgnat.special.test", "100.64.0.10"),
            ("zero.special.test", "0.1.2.3"),
            ("future.special.test", "240.0.0.1"),
            ("multicast.special.test", "224.0.0.251"),
            ("nat64.special.test", "64:ff9b::7f00:1"),
            ("sixtofour.special.test", "2002:7f00:1::1"),
            ("teredo.special.test", "2001:0:4136:e378:8000:63bf:3fff:fdd2"),
            ("v6doc.special.test", "2001:db8::1"),
        ] {
            options.resolve_overrides.insert(name.into(), vec![ip(addr)]);
        }
        if let Some(own) = own {
            options.resolve_overrides.insert("self.test".into(), vec![own]);
        }
        let proxy = Proxy::start(&policy, options).await;

        if let Some(own) = own {
            let got = curl(&["-x", &proxy.url(), &format!("http://self.test:{port}/x")]).await;
            assert_eq!(got.status, 403, "{got:?}");
            assert!(got.body.contains(&format!("{own}, an address of this host")), "{got:?}");
            let (status, body, _) = connect(proxy.addr, &format!("self.test:{port}")).await;
            assert_eq!(status, 403, "{body}");
            // Named by the route: allowed, and connected to without a resolver.
            let named = curl(&["-x", &proxy.url(), &format!("http://own.test:{port}/own")]).await;
            assert_eq!(named.status, 200, "{named:?}");
        } else {
            eprintln!("no non-loopback IPv4 address on this host: own-address case skipped");
        }
        for name in [
            "doc1", "doc2", "doc3", "bench", "cgnat", "zero", "future", "multicast", "nat64",
            "sixtofour", "teredo", "v6doc",
        ] {
            let (status, body, _) = connect(proxy.addr, &format!("{name}.special.test:{port}")).await;
            assert_eq!(status, 403, "{name}: {body}");
            assert!(body.contains("a route must list it in `addresses`"), "{name}: {body}");
        }

        // `addresses` is what the proxy connects to: pinned.test resolves nowhere.
        let pinned = curl(&["-x", &proxy.url(), &format!("http://pinned.test:{port}/pinned")]).await;
        assert_eq!(pinned.status, 200, "{pinned:?}");
        assert!(recorded.text().contains("GET /pinned"), "{}", recorded.text());

        // Malformed names under a wildcard never match (so never reach a resolver).
        let ok = curl(&["-x", &proxy.url(), &format!("http://api.wild.test:{port}/fine")]).await;
        assert_eq!(ok.status, 200, "{ok:?}");
        for bad in ["a..b.wild.test", "-.wild.test", "a-.wild.test", "a_b.wild.test", "a:b.wild.test"] {
            let (status, body, _) = connect(proxy.addr, &format!("{bad}:{port}")).await;
            assert_eq!(status, 403, "{bad}: {body}");
            assert!(body.contains("is not a well-formed host name"), "{bad}: {body}");
            let reply = raw_exchange(
                proxy.addr,
                format!("GET http://{bad}:{port}/x HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes(),
            )
            .await;
            // hyper refuses `a:b` in a URL's authority before the route table sees it.
            assert!(reply.starts_with("HTTP/1.1 403") || reply.starts_with("HTTP/1.1 400"), "{bad}: {reply}");
        }
        assert!(!recorded.text().contains("GET /x"), "{}", recorded.text());
    })
    .await
}
