//! The mirror's `pre-receive` hook. git runs it (the `bottle` executable,
//! linked as `hooks/pre-receive`) with the pushed ref updates on stdin while
//! the pushed objects are still quarantined. It checks every update against
//! the remote's rules; if all pass it pushes them to the upstream and exits 0
//! only when the upstream accepted them, so the agent's push succeeds exactly
//! when the upstream has it. Whatever it prints reaches the agent's
//! `git push` output as `remote:` lines. One audit line per push.
//!
//! A remote with `push-ask` does not refuse a ref outside its push patterns
//! (that passes the other rules): the hook asks the run's broker over the
//! control socket (`crate::supervise::control`, `ask`) and waits for the
//! answer; the broker bounds the wait, and a refusal's reason (with the
//! person's message) is what the agent reads.

use super::audit::{self, RefEntry};
use super::policy::Remote;
use super::rules::{self, RefUpdate};
use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::Command;

/// Whether this process was started as a mirror's hook (by its name).
pub fn is_hook_invocation() -> bool {
    std::env::args_os()
        .next()
        .map(PathBuf::from)
        .and_then(|p| p.file_name().map(|n| n == "pre-receive"))
        .unwrap_or(false)
        && std::env::var_os(super::RULES_VAR).is_some()
}

/// Run the hook; the process's exit code.
pub fn main() -> i32 {
    match run() {
        Ok(code) => code,
        Err(message) => {
            eprintln!("bottle: the git gate could not check this push: {message}");
            1
        }
    }
}

fn run() -> Result<i32, String> {
    let rules_path = std::env::var_os(super::RULES_VAR).ok_or("no rules given")?;
    let audit_path = PathBuf::from(std::env::var_os(super::AUDIT_VAR).ok_or("no audit log given")?);
    let text = std::fs::read(&rules_path).map_err(|e| format!("reading the rules: {e}"))?;
    let (name, remote): (String, Remote) =
        serde_json::from_slice(&text).map_err(|e| format!("reading the rules: {e}"))?;
    let updates: Vec<RefUpdate> = std::io::stdin()
        .lock()
        .lines()
        .map_while(Result::ok)
        .filter_map(|l| RefUpdate::parse(&l))
        .collect();

    let mut entries = Vec::new();
    let mut refused = false;
    let mut to_ask = Vec::new();
    for update in &updates {
        let (decision, reason) = match rules::check(&remote, update, || fast_forward(update)) {
            Ok(()) => ("allow", None),
            Err(r) if r.askable => {
                to_ask.push(update);
                ("ask", Some(r.reason))
            }
            Err(r) => {
                eprintln!("bottle: {} refused: {}", update.name, r.reason);
                refused = true;
                ("deny", Some(r.reason))
            }
        };
        entries.push(RefEntry {
            name: update.name.clone(),
            old: Some(update.old.clone()),
            new: update.new.clone(),
            decision: Some(decision.into()),
            reason,
        });
    }
    let log = |decision: &str, reason: String, refs: Vec<RefEntry>| {
        let _ = audit::append(
            &audit_path,
            &audit::Entry {
                time: audit::now(),
                remote: &name,
                op: "push",
                decision,
                reason,
                refs,
            },
        );
    };
    if refused {
        log("deny", "a ref broke the push rules".into(), entries);
        return Ok(1);
    }
    if !to_ask.is_empty() {
        let answer = ask(&name, &remote, &to_ask);
        for entry in entries
            .iter_mut()
            .filter(|e| e.decision.as_deref() == Some("ask"))
        {
            entry.decision = Some(if answer.is_ok() { "allow" } else { "deny" }.into());
            entry.reason = Some(match &answer {
                Ok(()) => "outside the push patterns; a person allowed it".into(),
                Err(why) => why.clone(),
            });
        }
        if let Err(why) = answer {
            let names: Vec<&str> = to_ask.iter().map(|u| u.name.as_str()).collect();
            eprintln!("bottle: {} refused: {why}", names.join(", "));
            log("deny", why, entries);
            return Ok(1);
        }
    }
    if updates.is_empty() {
        return Ok(0);
    }

    // Forward to the upstream. A lease on every forced update keeps a force
    // push from dropping upstream commits the mirror has not seen.
    let mut push = Command::new("git");
    // Only this side is quarantined; a local upstream must not inherit it.
    push.env_remove("GIT_QUARANTINE_PATH");
    push.args(["push", "--quiet", "--porcelain"]);
    for u in &updates {
        if remote.force && !u.is_create() && !u.is_delete() {
            push.arg(format!("--force-with-lease={}:{}", u.name, u.old));
        }
    }
    push.arg(&remote.url);
    for u in &updates {
        if u.is_delete() {
            push.arg(format!(":{}", u.name));
        } else if remote.force && !u.is_create() {
            push.arg(format!("+{}:{}", u.new, u.name));
        } else {
            push.arg(format!("{}:{}", u.new, u.name));
        }
    }
    let output = push
        .output()
        .map_err(|e| format!("cannot run git push: {e}"))?;
    if output.status.success() {
        log("allow", String::new(), entries);
        return Ok(0);
    }
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let reason = said
        .lines()
        .find(|l| l.contains("rejected") || l.starts_with('!'))
        .or_else(|| said.lines().rev().find(|l| !l.trim().is_empty()))
        .unwrap_or("the upstream refused the push")
        .trim()
        .to_string();
    let mut stderr = std::io::stderr().lock();
    let _ = writeln!(stderr, "bottle: the upstream refused the push:");
    for line in said
        .lines()
        .filter(|l| !l.trim().is_empty() && *l != "Done")
    {
        let _ = writeln!(stderr, "bottle:   {line}");
    }
    log("upstream-refused", reason, entries);
    Ok(1)
}

/// Ask the run's broker whether `updates` (outside the push patterns of
/// remote `name`) may go through; `Err` is the refusal the agent reads.
fn ask(name: &str, remote: &Remote, updates: &[&RefUpdate]) -> Result<(), String> {
    use crate::supervise::broker::{PushQuestion, PushRef};
    use crate::supervise::control::{Client, Reply, Request};
    let names: Vec<&str> = updates.iter().map(|u| u.name.as_str()).collect();
    let unsupervised = || {
        format!(
            "{} needs a person to allow it (the remote has `push-ask`), and no one \
             supervises this run",
            names.join(", ")
        )
    };
    let Some(socket) = std::env::var_os(super::ASK_VAR) else {
        return Err(unsupervised());
    };
    let mut client = Client::connect(std::path::Path::new(&socket)).map_err(|_| unsupervised())?;
    let request = Request::Ask {
        push: PushQuestion {
            remote: name.to_string(),
            url: remote.url.clone(),
            refs: updates
                .iter()
                .map(|u| PushRef {
                    name: u.name.clone(),
                    old: u.old.clone(),
                    new: u.new.clone(),
                })
                .collect(),
        },
    };
    let mut reply = client.ask(&request);
    while let Ok(Reply::Asked(waiting)) = &reply {
        eprintln!("bottle: {waiting}");
        reply = client
            .receive()
            .and_then(|r| r.ok_or_else(|| std::io::ErrorKind::UnexpectedEof.into()));
    }
    match reply {
        Ok(Reply::Allowed) => Ok(()),
        Ok(Reply::Denied(why)) => Err(why),
        Ok(_) => Err("the run's broker answered out of turn".into()),
        Err(e) => Err(format!("the run's broker did not answer: {e}")),
    }
}

/// Whether the update's new commit descends from its old one.
fn fast_forward(update: &RefUpdate) -> bool {
    Command::new("git")
        .args(["merge-base", "--is-ancestor", &update.old, &update.new])
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}
