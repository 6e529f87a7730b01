//! `bottle approve` and `bottle deny`: answer a request a running bottle
//! holds for a person (a connection its egress proxy holds, or a push its
//! git gate holds), from a script or another terminal.
use crate::realize::rundir;
use crate::supervise::broker::Pending;
use crate::supervise::control::{Client, Reply, Request};
use crate::supervise::CONTROL_SOCKET;
use clap::Args;
use std::process::ExitCode;

/// Allow a held request (`bottle supervise NAME` lists them with their ids).
#[derive(Args)]
#[command(
    after_help = "Examples:\n  bottle approve agent 3            (this once)\n  bottle approve agent 3 --run      (every request to that host:port, for this run)\n  bottle approve agent 3 --always   (and write the route into approved.bottle beside the recipe)"
)]
pub struct ApproveArgs {
    /// The run's name (`bottle ps`).
    pub name: String,
    /// The request's id.
    pub id: u64,
    /// Allow the requests waiting now only (the default).
    #[arg(long, conflicts_with_all = ["run", "always"])]
    pub once: bool,
    /// Allow the host and port (or the pushed refs) for the rest of this run.
    #[arg(long, conflicts_with = "always")]
    pub run: bool,
    /// Allow for this run, and add the route to the recipe's approved.bottle
    /// (a push's refs to approved-push-REMOTE.bottle).
    #[arg(long)]
    pub always: bool,
}

/// Refuse a held request; the agent gets a 403 saying what a person would
/// have to allow, and your message.
#[derive(Args)]
#[command(
    after_help = "Example:\n  bottle deny agent 3 --message 'use the package mirror instead'"
)]
pub struct DenyArgs {
    /// The run's name (`bottle ps`).
    pub name: String,
    /// The request's id.
    pub id: u64,
    /// Told to the agent in the refusal's body.
    #[arg(long, short)]
    pub message: Option<String>,
}

pub fn approve(args: ApproveArgs) -> miette::Result<ExitCode> {
    let verdict = if args.always {
        "always"
    } else if args.run {
        "run"
    } else {
        "once"
    };
    let answered = decide(&args.name, args.id, verdict, None)?;
    println!("allowed {} ({verdict})", answered.subject());
    Ok(ExitCode::SUCCESS)
}

pub fn deny(args: DenyArgs) -> miette::Result<ExitCode> {
    let answered = decide(&args.name, args.id, "deny", args.message)?;
    println!("denied {}", answered.subject());
    Ok(ExitCode::SUCCESS)
}

fn decide(name: &str, id: u64, verdict: &str, message: Option<String>) -> miette::Result<Pending> {
    let mut client = connect(name)?;
    let reply = client
        .ask(&Request::Decide {
            id,
            verdict: verdict.into(),
            message,
        })
        .map_err(|e| miette::miette!("the run `{name}` did not answer: {e}"))?;
    match reply {
        Reply::Ok(p) => Ok(p),
        Reply::Error(e) => Err(miette::miette!(
            help = format!("`bottle supervise {name}` shows the waiting requests"),
            "{e}"
        )),
        _ => Err(miette::miette!("the run `{name}` answered out of turn")),
    }
}

/// Connect to run `name`'s control socket.
pub fn connect(name: &str) -> miette::Result<Client> {
    let dir = rundir::runs_root().join(name);
    if !dir.is_dir() {
        return Err(rundir::RunDirError::NoSuchRun { name: name.into() }.into());
    }
    Client::connect(&dir.join(CONTROL_SOCKET)).map_err(|e| {
        miette::miette!(
            help = "only bottles with routes that say `approve = true`, `egress.default = \"ask\"` or git remotes with `push-ask = true` ask a person",
            "the run `{name}` takes no approvals ({e})"
        )
    })
}

/// How many requests run `name` holds for a person, if it takes approvals.
pub fn pending_count(name: &str) -> Option<usize> {
    let socket = rundir::runs_root().join(name).join(CONTROL_SOCKET);
    let mut client = Client::connect(&socket).ok()?;
    match client.ask(&Request::List).ok()? {
        Reply::Pending(p) => Some(p.len()),
        _ => None,
    }
}
