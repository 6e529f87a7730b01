//! The upstream side of `scripts/bench-egress`: a loopback HTTP/1.1 server
//! that answers `/bulk/N` with N bytes (streamed from one reused buffer) and
//! anything else with a small fixed body, so the proxy, not the server, is
//! what the benchmark measures.
//!
//! Usage: `egress_upstream serve 127.0.0.1:PORT` (prints `listening ADDR`).
//! Without `serve` it exits at once, so `cargo test --all-targets` (which
//! builds and runs bench targets) passes over it.

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Frame;
use hyper::Response;
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

const CHUNK: usize = 256 * 1024;

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let [mode, addr] = args.as_slice() else {
        println!("egress_upstream: nothing to do (usage: egress_upstream serve ADDR)");
        return;
    };
    if mode != "serve" {
        eprintln!("egress_upstream: unknown mode {mode}");
        std::process::exit(2);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(serve(addr.clone()));
}

async fn serve(addr: String) {
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .expect("the bench port is free");
    println!("listening {}", listener.local_addr().expect("bound"));
    let chunk = Bytes::from(vec![b'x'; CHUNK]);
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let chunk = chunk.clone();
        tokio::spawn(async move {
            let service =
                hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let chunk = chunk.clone();
                    async move {
                        let size = req
                            .uri()
                            .path()
                            .strip_prefix("/bulk/")
                            .and_then(|n| n.parse::<u64>().ok());
                        let response = match size {
                            Some(total) => Response::new(http_body_util::Either::Left(Bulk {
                                chunk,
                                left: total,
                            })),
                            None => Response::new(http_body_util::Either::Right(Full::new(
                                Bytes::from_static(b"hello from the egress benchmark upstream\n"),
                            ))),
                        };
                        Ok::<_, Infallible>(response)
                    }
                });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// `total` bytes as frames of one shared chunk.
struct Bulk {
    chunk: Bytes,
    left: u64,
}

impl hyper::body::Body for Bulk {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.left == 0 {
            return Poll::Ready(None);
        }
        let n = (self.left as usize).min(self.chunk.len());
        self.left -= n as u64;
        Poll::Ready(Some(Ok(Frame::data(self.chunk.slice(..n)))))
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        hyper::body::SizeHint::with_exact(self.left)
    }
}
