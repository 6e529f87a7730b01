//! Running git's own `git http-backend` as a CGI program for one request:
//! the request body streams into its stdin, its stdout's CGI headers become
//! the response's status and headers, and the rest streams back as the body.

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::{Request, Response, StatusCode};
use std::pin::Pin;
use std::process::Stdio;
use std::task::{Context, Poll};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;

/// A response body: a short message, or the CGI's output as it comes.
pub enum GateBody {
    Full(Option<Bytes>),
    Stream(mpsc::Receiver<std::io::Result<Bytes>>),
}

impl Body for GateBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        match self.get_mut() {
            GateBody::Full(data) => Poll::Ready(data.take().map(|d| Ok(Frame::data(d)))),
            GateBody::Stream(rx) => rx.poll_recv(cx).map(|o| o.map(|r| r.map(Frame::data))),
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, GateBody::Full(None))
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            GateBody::Full(Some(d)) => SizeHint::with_exact(d.len() as u64),
            GateBody::Full(None) => SizeHint::with_exact(0),
            GateBody::Stream(_) => SizeHint::default(),
        }
    }
}

/// A plain-text response, e.g. a refusal.
pub fn text(status: StatusCode, message: String) -> Response<GateBody> {
    let mut response = Response::new(GateBody::Full(Some(Bytes::from(message + "\n"))));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert("content-type", "text/plain; charset=utf-8".parse().unwrap());
    response
}

/// Run `command` (a configured `git http-backend`) as the CGI for `request`,
/// whose path below the project root is `path_info`. `hold` is kept until
/// the backend exits (e.g. the mirror's lock during a push).
pub async fn serve<T: Send + 'static>(
    mut command: tokio::process::Command,
    request: Request<Incoming>,
    path_info: &str,
    hold: T,
) -> Response<GateBody> {
    let (parts, mut body) = request.into_parts();
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    command
        .env("GATEWAY_INTERFACE", "CGI/1.1")
        .env("SERVER_PROTOCOL", "HTTP/1.1")
        .env("REQUEST_METHOD", parts.method.as_str())
        .env("PATH_INFO", path_info)
        .env("QUERY_STRING", parts.uri.query().unwrap_or(""))
        .env("REMOTE_ADDR", "127.0.0.1")
        .env("REMOTE_USER", "agent");
    for (header_name, var) in [
        ("content-type", "CONTENT_TYPE"),
        ("content-length", "CONTENT_LENGTH"),
        ("content-encoding", "HTTP_CONTENT_ENCODING"),
        ("git-protocol", "GIT_PROTOCOL"),
    ] {
        if let Some(value) = header(header_name) {
            command.env(var, value);
        }
    }
    command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true);
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(e) => {
            return text(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("bottle git gate: cannot run git http-backend: {e}"),
            )
        }
    };
    let mut stdin = child.stdin.take().expect("stdin is piped");
    tokio::spawn(async move {
        while let Some(Ok(frame)) = body.frame().await {
            if let Ok(data) = frame.into_data() {
                if stdin.write_all(&data).await.is_err() {
                    return;
                }
            }
        }
        // Dropping stdin ends the backend's input.
    });
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout is piped"));
    let mut builder = Response::builder();
    let mut line = String::new();
    loop {
        line.clear();
        match stdout.read_line(&mut line).await {
            Ok(0) | Err(_) => {
                return text(
                    StatusCode::BAD_GATEWAY,
                    "bottle git gate: git http-backend ended without a response".into(),
                )
            }
            Ok(_) => {}
        }
        let header_line = line.trim_end_matches(['\r', '\n']);
        if header_line.is_empty() {
            break;
        }
        let Some((name, value)) = header_line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("status") {
            let code = value.split(' ').next().and_then(|c| c.parse::<u16>().ok());
            builder = builder.status(code.unwrap_or(500));
        } else {
            builder = builder.header(name, value);
        }
    }
    let (tx, rx) = mpsc::channel(16);
    tokio::spawn(async move {
        let _hold = hold;
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            match stdout.read(&mut buffer).await {
                Ok(0) => break,
                Ok(n) => {
                    if tx
                        .send(Ok(Bytes::copy_from_slice(&buffer[..n])))
                        .await
                        .is_err()
                    {
                        break;
                    }
                }
                Err(e) => {
                    let _ = tx.send(Err(e)).await;
                    break;
                }
            }
        }
        let _ = child.wait().await;
    });
    builder
        .body(GateBody::Stream(rx))
        .unwrap_or_else(|e| text(StatusCode::BAD_GATEWAY, format!("bottle git gate: {e}")))
}
