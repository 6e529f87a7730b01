//! The audit log: one JSON line per decision the proxy makes (allow or deny,
//! which rule decided, bytes each way). Lines carry names, never header
//! values, so a secret cannot reach this file.

use serde::Serialize;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

/// One decision, as written to the log (`time` and `bottle` are added).
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    /// Who asked: the client's address, or `unix` for the Unix socket.
    pub client: String,
    pub method: String,
    pub host: String,
    pub port: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// `allow` or `deny`.
    pub decision: &'static str,
    /// The route that decided (`routes[i] host`), or the default rule.
    pub rule: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Bytes from the client towards the upstream.
    pub bytes_up: u64,
    /// Bytes from the upstream back to the client.
    pub bytes_down: u64,
}

impl Entry {
    /// A decision about `method host:port`, to be filled in as it is made.
    pub fn new(client: &str, method: &str, host: &str, port: u16, path: Option<&str>) -> Entry {
        Entry {
            client: client.to_string(),
            method: method.to_string(),
            host: host.to_string(),
            port,
            path: path.map(str::to_string),
            decision: "deny",
            rule: "default deny".to_string(),
            reason: None,
            status: None,
            bytes_up: 0,
            bytes_down: 0,
        }
    }
}

#[derive(Serialize)]
struct Line<'a> {
    time: String,
    bottle: &'a str,
    #[serde(flatten)]
    entry: &'a Entry,
}

/// Where decisions go: a JSONL file, or nowhere.
#[derive(Debug)]
pub struct AuditLog {
    bottle: String,
    file: Option<Mutex<File>>,
}

impl AuditLog {
    pub fn open(path: Option<&Path>, bottle: &str) -> miette::Result<AuditLog> {
        let file = match path {
            None => None,
            Some(path) => Some(Mutex::new(
                OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .map_err(|err| {
                        miette::miette!(
                            help = "check that the directory exists and is writable",
                            "cannot open the audit log {}: {err}",
                            path.display()
                        )
                    })?,
            )),
        };
        Ok(AuditLog {
            bottle: bottle.to_string(),
            file,
        })
    }

    /// Append one line. The whole line goes in one `write` on an append-only
    /// file, so concurrent decisions never interleave.
    pub fn record(&self, entry: &Entry) {
        let Some(file) = &self.file else { return };
        let time = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        let line = Line {
            time,
            bottle: &self.bottle,
            entry,
        };
        let Ok(mut text) = serde_json::to_string(&line) else {
            return;
        };
        text.push('\n');
        let mut file = file.lock().unwrap_or_else(|poison| poison.into_inner());
        if let Err(err) = file.write_all(text.as_bytes()) {
            eprintln!("bottle egress: cannot write the audit log: {err}");
        }
    }
}
