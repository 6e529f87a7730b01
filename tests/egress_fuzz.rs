//! Property tests (the fuzz targets) for the code that reads untrusted bytes
//! first: the request-head parser, the CONNECT / absolute-form target parser,
//! and path globs; and, end to end, arbitrary bytes thrown at a live proxy,
//! which must answer with an HTTP status or close, and keep serving.

mod egress_support;

use bottle::sidecar::egress::request::{parse_absolute, parse_authority, parse_head, HeadParse};
use bottle::sidecar::egress::rules::Glob;
use egress_support::*;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Inputs shaped like requests (so the parser gets past the first byte),
/// mixed with arbitrary bytes.
fn request_like() -> impl Strategy<Value = Vec<u8>> {
    let method = prop_oneof![
        Just("GET".to_string()),
        Just("CONNECT".to_string()),
        Just("POST".to_string()),
        "[A-Z]{0,8}"
    ];
    let target = prop_oneof![
        "[a-z.]{0,12}:[0-9]{0,6}",
        "http://[a-zA-Z0-9.:@\\[\\]-]{0,20}/[ -~]{0,20}",
        "[ -~]{0,30}",
    ];
    let headers = proptest::collection::vec("[ -~]{0,20}", 0..4);
    let tail = proptest::collection::vec(any::<u8>(), 0..32);
    (method, target, headers, tail).prop_map(|(m, t, hs, tail)| {
        let mut bytes = format!("{m} {t} HTTP/1.1\r\n").into_bytes();
        for h in hs {
            bytes.extend_from_slice(h.as_bytes());
            bytes.extend_from_slice(b"\r\n");
        }
        bytes.extend_from_slice(b"\r\n");
        bytes.extend(tail);
        bytes
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn head_parser_is_total(bytes in prop_oneof![proptest::collection::vec(any::<u8>(), 0..300), request_like()]) {
        match parse_head(&bytes) {
            HeadParse::Complete(head) => {
                prop_assert!(head.len <= bytes.len());
                prop_assert!(!head.method.is_empty());
            }
            HeadParse::Partial | HeadParse::Malformed(_) => {}
        }
    }

    #[test]
    fn target_parsers_are_total_and_normalize(text in "[ -~]{0,60}") {
        for target in [parse_authority(&text), parse_absolute(&text)].into_iter().flatten() {
            prop_assert!(target.port != 0);
            prop_assert!(!target.host.is_empty());
            prop_assert!(!target.host.ends_with('.'));
            prop_assert_eq!(target.host.to_ascii_lowercase(), target.host.clone());
            if let Some(path) = &target.path {
                prop_assert!(path.starts_with('/'));
            }
        }
    }

    #[test]
    fn authority_round_trips(labels in proptest::collection::vec("[a-zA-Z0-9-]{1,10}", 1..4), port in 1u16..) {
        let host = labels.join(".");
        let parsed = parse_authority(&format!("{host}.:{port}")).unwrap();
        prop_assert_eq!(parsed.host, host.to_ascii_lowercase());
        prop_assert_eq!(parsed.port, port);
    }

    #[test]
    fn paths_with_segments_servers_normalize_are_refused(
        segments in proptest::collection::vec(prop_oneof![
            Just("v1"), Just("a.b"), Just("a;b=1"), Just("..."), Just(".x"), Just("%2e%2ex"),
            Just(".."), Just("."), Just("..;"), Just(".;"), Just("..;x=1"), Just(".;jsessionid=2"),
            Just("%2e%2e"), Just("%2E."), Just("%2e%2e%3b"), Just("..%3B"), Just("%252e%252e"), Just("%2e;a"),
        ], 1..6)
    ) {
        let dotted = ["..", ".", "..;", ".;", "..;x=1", ".;jsessionid=2", "%2e%2e", "%2E.", "%2e%2e%3b", "..%3B", "%252e%252e", "%2e;a"];
        let policy = bottle::sidecar::egress::Policy::from_yaml(
            "version: 1\nbottle: b\nroutes:\n  - host: a.test\n    ports: [443]\n    inspect: true\n    paths: ['*']\n",
        ).unwrap();
        let table = bottle::sidecar::egress::rules::RouteTable::new(&policy);
        let route = table.find("a.test", 443).unwrap();
        let path = format!("/{}", segments.join("/"));
        let refused = route.admits("GET", &path).is_err();
        prop_assert_eq!(refused, segments.iter().any(|s| dotted.contains(s)), "{}", path);
    }

    #[test]
    fn globs_agree_with_a_regex(pattern in "[/a-c*]{0,8}", text in "[/a-c]{0,10}") {
        let regex = format!("^{}$", pattern.split('*').map(regex::escape).collect::<Vec<_>>().join(".*"));
        let oracle = regex::Regex::new(&regex).unwrap();
        prop_assert_eq!(Glob::new(&pattern).matches(&text), oracle.is_match(&text), "pattern {} text {}", pattern, text);
    }
}

/// Is `reply` empty or an HTTP response? For a connection that first had a
/// good request answered, that answer is skipped first (it must be a 200).
fn assert_http_or_nothing(reply: &[u8], after_first: bool, sent: &[u8]) {
    let mut rest = reply;
    if after_first {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut response = httparse::Response::new(&mut headers);
        let Ok(httparse::Status::Complete(head)) = response.parse(rest) else {
            panic!(
                "no answer to the first request before {sent:?}: {:?}",
                String::from_utf8_lossy(reply)
            );
        };
        assert_eq!(
            response.code,
            Some(200),
            "{:?}",
            String::from_utf8_lossy(reply)
        );
        let length: usize = response
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case("content-length"))
            .and_then(|h| std::str::from_utf8(h.value).ok()?.parse().ok())
            .expect("the echo server sends a length");
        rest = &rest[head + length..];
    }
    assert!(
        rest.is_empty() || rest.starts_with(b"HTTP/1."),
        "reply to {sent:?} is not HTTP: {:?}",
        String::from_utf8_lossy(rest)
    );
}

/// Where the fuzz bytes go: first on a connection, after a good request on a
/// kept-alive connection, or inside an inspected tunnel (first or second).
#[derive(Debug, Clone, Copy)]
enum Place {
    First,
    KeptAlive,
    Tunnel,
    TunnelKeptAlive,
}

#[test]
fn a_live_proxy_answers_arbitrary_bytes_with_a_status_or_closes() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        tokio::time::timeout(TEST_LIMIT * 3, async {
            let dir = tempfile::tempdir().unwrap();
            let ca = TestCa::new(dir.path());
            let (http, _h) = echo_server(None).await;
            let (https, _s) = echo_server(Some(ca.server_config(&["inspected.test"]))).await;
            let policy = format!(
                "version: 1\nbottle: fuzz\nroutes:\n  - host: allowed.test\n    ports: [{}]\n    addresses: [127.0.0.1]\n  - host: inspected.test\n    ports: [{}]\n    inspect: true\n    methods: [GET, POST]\n    paths: ['/v1/*']\n    addresses: [127.0.0.1]\nupstream_ca: {}\n",
                http.port(),
                https.port(),
                ca.pem_path.display()
            );
            let mut options = options(None);
            options.limits.header_timeout = Duration::from_secs(2);
            let proxy = Proxy::start(&policy, options).await;
            let bottle_ca = proxy.egress.ca_certificate_pem();
            let first_plain = format!("GET http://allowed.test:{}/first HTTP/1.1\r\nHost: allowed.test\r\n\r\n", http.port());
            let first_inside = "GET /v1/first HTTP/1.1\r\nHost: inspected.test\r\n\r\n";
            let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig { cases: 400, ..ProptestConfig::default() });
            let strategy = prop_oneof![proptest::collection::vec(any::<u8>(), 1..200), request_like()];
            let places = [Place::First, Place::KeptAlive, Place::Tunnel, Place::TunnelKeptAlive];
            for case in 0..400 {
                let bytes = strategy.new_tree(&mut runner).unwrap().current();
                let place = places[case % places.len()];
                let mut reply = Vec::new();
                match place {
                    Place::First | Place::KeptAlive => {
                        let mut stream = tokio::net::TcpStream::connect(proxy.addr).await.unwrap();
                        if matches!(place, Place::KeptAlive) {
                            stream.write_all(first_plain.as_bytes()).await.unwrap();
                        }
                        let _ = stream.write_all(&bytes).await;
                        // Half-close: a client that said all it will say must still get an answer.
                        let _ = stream.shutdown().await;
                        let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut reply)).await;
                        assert!(read.is_ok(), "no answer within 10s to {bytes:?} ({place:?})");
                    }
                    Place::Tunnel | Place::TunnelKeptAlive => {
                        let (status, head, stream) = connect(proxy.addr, &format!("inspected.test:{}", https.port())).await;
                        assert_eq!(status, 200, "{head}");
                        let mut tls = tls_client(stream, "inspected.test", &bottle_ca).await;
                        if matches!(place, Place::TunnelKeptAlive) {
                            tls.write_all(first_inside.as_bytes()).await.unwrap();
                        }
                        let _ = tls.write_all(&bytes).await;
                        let _ = tls.flush().await;
                        let _ = tls.shutdown().await;
                        let read = tokio::time::timeout(Duration::from_secs(10), tls.read_to_end(&mut reply)).await;
                        assert!(read.is_ok(), "no answer within 10s to {bytes:?} ({place:?})");
                    }
                }
                assert_http_or_nothing(&reply, matches!(place, Place::KeptAlive | Place::TunnelKeptAlive), &bytes);
            }
            let ok = curl(&["-x", &proxy.url(), &format!("http://allowed.test:{}/after-fuzz", http.port())]).await;
            assert_eq!(ok.status, 200, "{ok:?}");
        })
        .await
        .expect("the fuzz run exceeded its time limit");
    });
}

const SECRET: &str = "sk-fuzz-4f1d2c3b5a69-never-in-clear";

/// Requests of every form a client can send, aimed at routes that inject a
/// secret and routes that do not, with spellings of the host, method
/// overrides, hop-by-hop headers and pipelined second requests.
fn secret_probe(port: u16) -> impl Strategy<Value = Vec<u8>> {
    let host = prop_oneof![
        Just("inspected.test".to_string()),
        Just("INSPECTED.Test.".to_string()),
        Just("api.inspected.test".to_string()),
        Just("allowed.test".to_string()),
        Just("127.0.0.1".to_string()),
        Just("[::ffff:127.0.0.1]".to_string()),
        "[a-z]{1,6}\\.inspected\\.test",
    ];
    let method = prop_oneof![
        Just("GET"),
        Just("POST"),
        Just("DELETE"),
        Just("PUT"),
        Just("OPTIONS")
    ];
    let path = prop_oneof![
        Just("/v1/x".to_string()),
        "/v1/[ -~&&[^ ]]{0,16}",
        "/[a-z.;%]{0,12}"
    ];
    let header = prop_oneof![
        Just("X-HTTP-Method-Override: GET".to_string()),
        Just("Connection: keep-alive".to_string()),
        Just("Connection: close, x-api-key".to_string()),
        Just("Proxy-Connection: keep-alive".to_string()),
        Just("x-api-key: forged".to_string()),
        Just("Host: inspected.test".to_string()),
        Just("Upgrade: websocket".to_string()),
        Just("Expect: 100-continue".to_string()),
        "[A-Za-z-]{1,10}: [ -~]{0,10}",
    ];
    let form = 0..3u8;
    let headers = proptest::collection::vec(header, 0..4);
    let second = proptest::option::of((host.clone(), method.clone(), path.clone()));
    (form, host, method, path, headers, second).prop_map(move |(form, host, method, path, headers, second)| {
        let extra: String = headers.iter().map(|h| format!("{h}\r\n")).collect();
        let absolute = |host: &str, method: &str, path: &str| {
            format!("{method} http://{host}:{port}{path} HTTP/1.1\r\nHost: {host}\r\n{extra}\r\n")
        };
        let mut text = match form {
            // A plain absolute-form request.
            0 => absolute(&host, method, &path),
            // CONNECT, then a plain request inside the tunnel.
            1 => format!("CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n{method} {path} HTTP/1.1\r\nHost: {host}\r\n{extra}\r\n"),
            // A plain request with a body.
            _ => format!("{method} http://{host}:{port}{path} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 5\r\n{extra}\r\nhello"),
        };
        if let Some((host, method, path)) = second {
            text.push_str(&absolute(&host, method, &path));
        }
        text.into_bytes()
    })
}

#[test]
fn no_secret_ever_reaches_a_socket_without_tls() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        tokio::time::timeout(TEST_LIMIT * 3, async {
            let dir = tempfile::tempdir().unwrap();
            let ca = TestCa::new(dir.path());
            let secret_file = dir.path().join("key");
            std::fs::write(&secret_file, SECRET).unwrap();
            // One plaintext upstream behind every route: the routes that add
            // the secret say it is a TLS port.
            let (upstream, recorded, _u) = recording_server(None).await;
            let port = upstream.port();
            let policy = format!(
                "version: 1\nbottle: secrets\nroutes:\n  - host: inspected.test\n    ports: [{port}]\n    inspect: true\n    methods: [GET, POST]\n    paths: ['/v1/*']\n    headers: [{{name: x-api-key, secret: key}}]\n    addresses: [127.0.0.1]\n  - host: '*.inspected.test'\n    ports: [{port}]\n    inspect: true\n    headers: [{{name: authorization, secret: key}}]\n    addresses: [127.0.0.1]\n  - host: allowed.test\n    ports: [{port}]\n    addresses: [127.0.0.1]\n  - host: 127.0.0.1\n    ports: [{port}]\nsecrets:\n  key: {{ file: {} }}\nupstream_ca: {}\n",
                secret_file.display(),
                ca.pem_path.display()
            );
            let mut options = options(None);
            options.limits.header_timeout = Duration::from_secs(2);
            options.limits.connect_timeout = Duration::from_secs(2);
            let proxy = Proxy::start(&policy, options).await;
            let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig { cases: 300, ..ProptestConfig::default() });
            let strategy = secret_probe(port);
            for _ in 0..300 {
                let bytes = strategy.new_tree(&mut runner).unwrap().current();
                let mut stream = tokio::net::TcpStream::connect(proxy.addr).await.unwrap();
                let _ = stream.write_all(&bytes).await;
                let _ = stream.shutdown().await;
                let mut reply = Vec::new();
                let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut reply)).await;
                assert!(
                    !recorded.contains(SECRET.as_bytes()),
                    "the secret reached a plaintext socket after {:?}",
                    String::from_utf8_lossy(&bytes)
                );
            }
            // The probes did reach the plaintext upstream where routes allow it.
            assert!(recorded.text().contains("HTTP/1.1"), "the upstream saw nothing");
        })
        .await
        .expect("the secret probe exceeded its time limit");
    });
}
