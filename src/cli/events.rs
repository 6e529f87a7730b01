//! `bottle events`: what a running bottle has done so far — its own log
//! (each part ready, the start, parts ending), every egress and git gate
//! decision, every approval — and, with `--follow`, what it does next,
//! until the run ends.
use crate::realize::rundir;
use clap::Args;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Show a running bottle's events: the run's log (each part ready, parts
/// ending), egress and git decisions, approvals.
#[derive(Args)]
#[command(
    after_help = "Examples:\n  bottle events agent\n  bottle events agent --follow --json | jq ."
)]
pub struct EventsArgs {
    /// The run's name (`bottle ps`).
    pub name: String,
    /// Keep printing new events until the run ends.
    #[arg(short, long)]
    pub follow: bool,
    /// One JSON object a line, each with its `source` (run, egress, git, supervise).
    #[arg(long)]
    pub json: bool,
}

/// The files events come from, in the run directory, and their source names.
const SOURCES: &[(&str, &str)] = &[
    ("run", crate::realize::RUN_LOG),
    ("egress", "egress-audit.jsonl"),
    ("git", "git-gate-audit.jsonl"),
    ("supervise", crate::supervise::EVENTS),
];

struct Follower {
    source: &'static str,
    path: PathBuf,
    /// Kept open once it exists: the run removes its directory as it ends,
    /// and the last lines are still read from the open file.
    file: Option<std::fs::File>,
    partial: String,
}

impl Follower {
    /// The complete lines added since the last call.
    fn read(&mut self) -> Vec<String> {
        if self.file.is_none() {
            self.file = std::fs::File::open(&self.path).ok();
        }
        let Some(file) = &mut self.file else {
            return Vec::new();
        };
        let mut bytes = Vec::new();
        if file.read_to_end(&mut bytes).is_err() {
            return Vec::new();
        }
        self.partial.push_str(&String::from_utf8_lossy(&bytes));
        let Some(end) = self.partial.rfind('\n') else {
            return Vec::new();
        };
        let complete: String = self.partial.drain(..=end).collect();
        complete.lines().map(str::to_string).collect()
    }
}

pub fn run(args: EventsArgs) -> miette::Result<ExitCode> {
    let dir = rundir::runs_root().join(&args.name);
    if !dir.join("run.json").is_file() {
        return Err(rundir::RunDirError::NoSuchRun { name: args.name }.into());
    }
    let mut followers: Vec<Follower> = SOURCES
        .iter()
        .map(|(source, file)| Follower {
            source,
            path: dir.join(file),
            file: None,
            partial: String::new(),
        })
        .collect();
    let mut out = std::io::stdout().lock();
    let mut ending = false;
    loop {
        // Whether the run has ended is learnt before the last read, so
        // nothing written before it ended is missed.
        let gone = args.follow && !dir.join("run.json").is_file();
        for follower in &mut followers {
            for line in follower.read() {
                let shown = show(follower.source, &line, args.json);
                if writeln!(out, "{shown}").is_err() {
                    return Ok(ExitCode::SUCCESS);
                }
            }
        }
        let _ = out.flush();
        if !args.follow {
            return Ok(ExitCode::SUCCESS);
        }
        if ending {
            let _ = writeln!(out, "{}", ended(&args.name, args.json));
            return Ok(ExitCode::SUCCESS);
        }
        ending = gone;
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn ended(name: &str, json: bool) -> String {
    if json {
        serde_json::json!({ "source": "run", "event": "ended", "message": format!("the run {name} has ended") }).to_string()
    } else {
        format!("run        the run `{name}` has ended")
    }
}

/// A line of the run's own log as an event: its `message`, and for the
/// lines the realizer writes in a known shape an `event` (`ready` with its
/// `part` and `ms`, `started` with `ms`, `ended` with the `part`).
fn run_event(line: &str) -> serde_json::Value {
    let mut value = serde_json::json!({ "message": line });
    let ms = |text: &str| {
        text.strip_suffix(" ms")
            .and_then(|n| n.trim().parse::<u64>().ok())
    };
    if let Some(rest) = line.strip_prefix("ready: ") {
        if let Some((part, time)) = rest.rsplit_once(" (") {
            value["event"] = "ready".into();
            value["part"] = part.into();
            value["ms"] = ms(time.trim_end_matches(')')).into();
        }
    } else if let Some(rest) = line.strip_prefix("started in ") {
        value["event"] = "started".into();
        value["ms"] = ms(rest).into();
    } else if let Some((part, _)) = line.split_once(" ended: ") {
        value["event"] = "ended".into();
        value["part"] = part.into();
    }
    value
}

/// One event as a line of text or JSON.
fn show(source: &str, line: &str, json: bool) -> String {
    let value: Option<serde_json::Value> = serde_json::from_str(line)
        .ok()
        .filter(|v: &serde_json::Value| v.is_object());
    if json {
        let mut value = value.unwrap_or_else(|| run_event(line));
        value["source"] = serde_json::json!(source);
        return value.to_string();
    }
    let Some(v) = value else {
        return format!("{source:<10} {line}");
    };
    let s = |key: &str| v[key].as_str().unwrap_or("").to_string();
    let n = |key: &str| v[key].as_u64().map(|n| n.to_string()).unwrap_or_default();
    match source {
        "egress" => {
            let status = n("status");
            let reason = v["reason"]
                .as_str()
                .map(|r| format!(": {r}"))
                .unwrap_or_default();
            format!(
                "egress     {} {} {} {}:{}{} [{}] {status}{reason}",
                s("time"),
                s("decision"),
                s("method"),
                s("host"),
                n("port"),
                s("path"),
                s("rule"),
            )
        }
        "git" => {
            let refs: Vec<String> = v["refs"]
                .as_array()
                .map(|refs| {
                    refs.iter()
                        .map(|r| {
                            let decision = r["decision"]
                                .as_str()
                                .map(|d| format!(" {d}"))
                                .unwrap_or_default();
                            format!("{}{decision}", r["ref"].as_str().unwrap_or(""))
                        })
                        .collect()
                })
                .unwrap_or_default();
            let reason = v["reason"]
                .as_str()
                .map(|r| format!(": {r}"))
                .unwrap_or_default();
            format!(
                "git        {} {} {} {} [{}]{reason}",
                s("time"),
                s("decision"),
                s("op"),
                s("remote"),
                refs.join(", "),
            )
        }
        "supervise" => {
            let subject = match v["remote"].as_str() {
                Some(remote) => {
                    let refs: Vec<&str> = v["refs"]
                        .as_array()
                        .map(|refs| refs.iter().filter_map(|r| r["ref"].as_str()).collect())
                        .unwrap_or_default();
                    format!("push to {remote}: {}", refs.join(", "))
                }
                None => format!("{}:{}", s("host"), n("port")),
            };
            format!(
                "supervise  {} #{} {subject}{}",
                s("event"),
                n("id"),
                v["answer"]
                    .as_str()
                    .map(|a| format!(" ({a})"))
                    .unwrap_or_default()
            )
        }
        _ => format!("{source:<10} {line}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_runs_own_lines_become_events() {
        let ready: serde_json::Value =
            serde_json::from_str(&show("run", "ready: git-gate (344 ms)", true)).unwrap();
        assert_eq!(ready["event"], "ready");
        assert_eq!(ready["part"], "git-gate");
        assert_eq!(ready["ms"], 344);
        assert_eq!(ready["source"], "run");
        let started: serde_json::Value =
            serde_json::from_str(&show("run", "started in 1642 ms", true)).unwrap();
        assert_eq!(
            (started["event"].as_str(), started["ms"].as_u64()),
            (Some("started"), Some(1642))
        );
        let other: serde_json::Value =
            serde_json::from_str(&show("run", "accelerator: Tcg", true)).unwrap();
        assert_eq!(other["message"], "accelerator: Tcg");
        assert!(other.get("event").is_none(), "{other}");
        assert_eq!(
            show("run", "ready: guest (7032 ms)", false),
            "run        ready: guest (7032 ms)"
        );
    }

    #[test]
    fn git_and_push_lines_read_as_text() {
        let git = r#"{"time":"T","remote":"origin","op":"push","decision":"deny","reason":"a person denied it","refs":[{"ref":"refs/heads/main","old":"a","new":"b","decision":"deny"}]}"#;
        assert_eq!(
            show("git", git, false),
            "git        T deny push origin [refs/heads/main deny]: a person denied it"
        );
        let asked = r#"{"time":1,"source":"supervise","event":"asked","id":4,"answer":null,"remote":"origin","refs":[{"ref":"refs/heads/late","old":"0","new":"1"}]}"#;
        assert_eq!(
            show("supervise", asked, false),
            "supervise  asked #4 push to origin: refs/heads/late"
        );
    }
}
