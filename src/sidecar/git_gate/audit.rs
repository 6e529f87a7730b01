//! The gate's audit log: one JSON line per fetch and per push, appended to
//! `git-gate-audit.jsonl` in the run directory, beside the egress audit. The
//! gate writes fetch lines, the pre-receive hook push lines; each line is one
//! `write` on a file opened for appending, so the two never interleave.

use serde::Serialize;
use std::io::Write;
use std::path::Path;

#[derive(Debug, Serialize)]
pub struct Entry<'a> {
    pub time: String,
    pub remote: &'a str,
    /// `fetch` or `push`.
    pub op: &'a str,
    /// `allow`, `deny`, `upstream-refused` or `error`.
    pub decision: &'a str,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub reason: String,
    pub refs: Vec<RefEntry>,
}

#[derive(Debug, Serialize)]
pub struct RefEntry {
    #[serde(rename = "ref")]
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old: Option<String>,
    pub new: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

pub fn now() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// Append `entry` as one line.
pub fn append(path: &Path, entry: &Entry<'_>) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(entry).expect("an audit entry is plain data");
    line.push(b'\n');
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?
        .write_all(&line)
}
