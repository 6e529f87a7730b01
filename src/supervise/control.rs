//! The run's control socket: `supervise.sock` in the run directory (which
//! only the run's user can enter), one JSON object a line each way.
//!
//! Requests: `{"op":"list"}` → `{"pending":[…]}`;
//! `{"op":"decide","id":N,"verdict":"once|run|always|deny","message":…}` →
//! `{"ok":{…the answered question…}}` or `{"error":"…"}`;
//! `{"op":"watch"}` → a `{"pending":[…]}` line now and after every change;
//! `{"op":"ask","push":{"remote":…,"url":…,"refs":[…]}}` (the git gate's
//! pre-receive hook) → `{"asked":"…"}` when a person is asked (not when the
//! refs are allowed for the run), then `"allowed"` or `{"denied":"…why…"}`
//! once a person answers or the wait times out.
use super::broker::{Broker, Pending, PushQuestion, Verdict};
use crate::sidecar::egress::approval::Answer;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::Arc;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixListener;

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum Request {
    List,
    Watch,
    Decide {
        id: u64,
        verdict: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
    },
    Ask {
        push: PushQuestion,
    },
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Reply {
    Pending(Vec<Pending>),
    Ok(Pending),
    Error(String),
    /// A push is held while a person is asked; what to tell the agent.
    Asked(String),
    /// A held push may go through.
    Allowed,
    /// A held push is refused; why, for the agent.
    Denied(String),
}

/// Serve `broker` on `listener` until the run ends.
pub async fn serve(listener: UnixListener, broker: Arc<Broker>) -> Result<(), String> {
    loop {
        let (stream, _) = listener.accept().await.map_err(|e| e.to_string())?;
        let broker = broker.clone();
        tokio::spawn(async move {
            let (read, mut write) = stream.into_split();
            let mut lines = BufReader::new(read).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let reply = match serde_json::from_str::<Request>(&line) {
                    Err(e) => Reply::Error(format!("not a request: {e}")),
                    Ok(Request::List) => Reply::Pending(broker.pending()),
                    Ok(Request::Decide {
                        id,
                        verdict,
                        message,
                    }) => match Verdict::parse(&verdict) {
                        None => {
                            Reply::Error(format!("`{verdict}` is not once, run, always or deny"))
                        }
                        Some(v) => match broker.decide(id, v, message.as_deref()) {
                            Ok(p) => Reply::Ok(p),
                            Err(e) => Reply::Error(e),
                        },
                    },
                    Ok(Request::Ask { push }) => {
                        if let Some(waiting) = broker.will_ask(&push) {
                            if send(&mut write, &Reply::Asked(waiting)).await.is_err() {
                                return;
                            }
                        }
                        // A hook that goes away gives up its question.
                        let answer = tokio::select! {
                            answer = broker.ask_push(push) => answer,
                            _ = lines.next_line() => return,
                        };
                        match answer {
                            Answer::Allow => Reply::Allowed,
                            Answer::Deny(why) => Reply::Denied(why),
                        }
                    }
                    Ok(Request::Watch) => {
                        let mut changed = broker.subscribe();
                        loop {
                            if send(&mut write, &Reply::Pending(broker.pending()))
                                .await
                                .is_err()
                            {
                                return;
                            }
                            if changed.changed().await.is_err() {
                                return;
                            }
                        }
                    }
                };
                if send(&mut write, &reply).await.is_err() {
                    return;
                }
            }
        });
    }
}

async fn send(write: &mut tokio::net::unix::OwnedWriteHalf, reply: &Reply) -> std::io::Result<()> {
    let mut line = serde_json::to_string(reply).expect("replies serialize");
    line.push('\n');
    write.write_all(line.as_bytes()).await
}

/// A blocking client of one run's control socket.
pub struct Client {
    reader: std::io::BufReader<std::os::unix::net::UnixStream>,
    writer: std::os::unix::net::UnixStream,
}

impl Client {
    pub fn connect(socket: &Path) -> std::io::Result<Client> {
        let stream = std::os::unix::net::UnixStream::connect(socket)?;
        Ok(Client {
            reader: std::io::BufReader::new(stream.try_clone()?),
            writer: stream,
        })
    }

    pub fn send(&mut self, request: &Request) -> std::io::Result<()> {
        use std::io::Write;
        let mut line = serde_json::to_string(request).expect("requests serialize");
        line.push('\n');
        self.writer.write_all(line.as_bytes())
    }

    /// The next reply; `None` when the run has ended.
    pub fn receive(&mut self) -> std::io::Result<Option<Reply>> {
        use std::io::BufRead;
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            return Ok(None);
        }
        serde_json::from_str(&line)
            .map(Some)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
    }

    pub fn ask(&mut self, request: &Request) -> std::io::Result<Reply> {
        self.send(request)?;
        self.receive()?
            .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "the run ended"))
    }
}
