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
    fn globs_agree_with_a_regex(pattern in "[/a-c*]{0,8}", text in "[/a-c]{0,10}") {
        let regex = format!("^{}$", pattern.split('*').map(regex::escape).collect::<Vec<_>>().join(".*"));
        let oracle = regex::Regex::new(&regex).unwrap();
        prop_assert_eq!(Glob::new(&pattern).matches(&text), oracle.is_match(&text), "pattern {} text {}", pattern, text);
    }
}

#[test]
fn a_live_proxy_answers_arbitrary_bytes_with_a_status_or_closes() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        tokio::time::timeout(TEST_LIMIT, async {
            let (http, _h) = echo_server(None).await;
            let policy = format!(
                "version: 1\nbottle: fuzz\nroutes:\n  - host: allowed.test\n    ports: [{}]\n    addresses: [127.0.0.1]\n",
                http.port()
            );
            let mut options = options(None);
            options.limits.header_timeout = Duration::from_secs(2);
            let proxy = Proxy::start(&policy, options).await;
            let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig { cases: 300, ..ProptestConfig::default() });
            let strategy = prop_oneof![proptest::collection::vec(any::<u8>(), 1..200), request_like()];
            for _ in 0..300 {
                let bytes = strategy.new_tree(&mut runner).unwrap().current();
                let mut stream = tokio::net::TcpStream::connect(proxy.addr).await.unwrap();
                let _ = stream.write_all(&bytes).await;
                // Half-close: a client that said all it will say must still get an answer.
                let _ = stream.shutdown().await;
                let mut reply = Vec::new();
                let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut reply)).await;
                assert!(read.is_ok(), "no answer within 10s to {bytes:?}");
                assert!(
                    reply.is_empty() || reply.starts_with(b"HTTP/1."),
                    "reply to {bytes:?} is not HTTP: {:?}",
                    String::from_utf8_lossy(&reply)
                );
            }
            let ok = curl(&["-x", &proxy.url(), &format!("http://allowed.test:{}/after-fuzz", http.port())]).await;
            assert_eq!(ok.status, 200, "{ok:?}");
        })
        .await
        .expect("the fuzz run exceeded its time limit");
    });
}
