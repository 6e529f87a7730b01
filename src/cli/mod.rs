//! The command line: one file per subcommand; this file only dispatches and
//! maps outcomes to exit codes (0 success, 1 the recipe or run failed, 2 usage,
//! 125 a run whose agent's exit status cannot be trusted).

mod approve;
mod build;
mod check;
mod completions;
mod doctor;
mod eval;
mod events;
mod fmt;
mod gc;
mod lock;
mod lsp;
mod ps;
mod repl;
mod run;
mod show_derivation;
mod sidecar;
mod stop;
mod store;
mod supervise;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Run AI coding agents in contained microVMs described by `.bottle` recipes.
#[derive(Parser)]
#[command(name = "bottle", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Pull OCI images from this registry (`host[:port]`) instead of the
    /// one each reference names (digests are checked all the same).
    #[arg(
        long,
        global = true,
        env = "BOTTLE_REGISTRY_MIRROR",
        value_name = "HOST"
    )]
    registry_mirror: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    Eval(eval::EvalArgs),
    Fmt(fmt::FmtArgs),
    Build(build::BuildArgs),
    Lock(lock::LockArgs),
    Check(check::CheckArgs),
    Repl(repl::ReplArgs),
    Lsp(lsp::LspArgs),
    Completions(completions::CompletionsArgs),
    Man(completions::ManArgs),
    ShowDerivation(show_derivation::ShowDerivationArgs),
    Store(store::StoreArgs),
    Gc(gc::GcArgs),
    Run(run::RunArgs),
    Ps(ps::PsArgs),
    Stop(stop::StopArgs),
    Approve(approve::ApproveArgs),
    Deny(approve::DenyArgs),
    Supervise(supervise::SuperviseArgs),
    Events(events::EventsArgs),
    Doctor(doctor::DoctorArgs),
    /// Run one sidecar on its own (e.g. `bottle sidecar egress`).
    Sidecar(sidecar::SidecarArgs),
}

/// Exit code for a recipe or run that failed (a diagnostic was printed).
pub const EXIT_FAILURE: u8 = 1;
/// Exit code for a command line that could not be understood.
pub const EXIT_USAGE: u8 = 2;

pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            let code = if err.use_stderr() { EXIT_USAGE } else { 0 };
            let _ = err.print();
            return ExitCode::from(code);
        }
    };
    crate::image::pull::set_default_mirror(cli.registry_mirror.clone().filter(|m| !m.is_empty()));
    // Every subcommand returns its outcome; this is the one place a failure
    // becomes a printed diagnostic and an exit code.
    let outcome = match cli.command {
        Command::Eval(args) => eval::run(args),
        Command::Fmt(args) => fmt::run(args),
        Command::Build(args) => build::run(args),
        Command::Lock(args) => lock::run(args),
        Command::Check(args) => check::run(args),
        Command::Repl(args) => repl::run(args),
        Command::Lsp(args) => lsp::run(args),
        Command::Completions(args) => completions::completions(args),
        Command::Man(args) => completions::man(args),
        Command::ShowDerivation(args) => show_derivation::run(args),
        Command::Store(args) => store::run(args),
        Command::Gc(args) => gc::run(args),
        Command::Run(args) => run::run(args),
        Command::Ps(args) => ps::run(args),
        Command::Stop(args) => stop::run(args),
        Command::Doctor(args) => doctor::run(args),
        Command::Approve(args) => approve::approve(args),
        Command::Deny(args) => approve::deny(args),
        Command::Supervise(args) => supervise::run(args),
        Command::Events(args) => events::run(args),
        Command::Sidecar(args) => sidecar::run(args),
    };
    outcome.unwrap_or_else(|report| {
        let code = report
            .downcast_ref::<crate::realize::RunError>()
            .map_or(EXIT_FAILURE, crate::realize::RunError::exit_code);
        crate::diagnostics::print(report);
        ExitCode::from(code)
    })
}

/// The search path for `<...>` lookups: the bundled stdlib as `<bottle/...>`,
/// then each `-I` entry (`DIR` or `PREFIX=DIR`), then `BOTTLE_PATH`
/// (colon-separated, same forms).
pub fn search_path(includes: &[String]) -> Vec<crate::eval::SearchPathEntry> {
    let mut entries = vec![crate::eval::SearchPathEntry {
        prefix: "bottle".into(),
        dir: stdlib_dir(),
    }];
    let from_env = std::env::var("BOTTLE_PATH").unwrap_or_default();
    let extra = includes
        .iter()
        .map(String::as_str)
        .chain(from_env.split(':').filter(|s| !s.is_empty()));
    for item in extra {
        let (prefix, dir) = item.split_once('=').unwrap_or(("", item));
        let dir = std::path::absolute(dir).unwrap_or_else(|_| dir.into());
        entries.push(crate::eval::SearchPathEntry {
            prefix: prefix.into(),
            dir,
        });
    }
    entries
}

/// The bundled stdlib: beside an installed binary (`../share/bottle/stdlib`),
/// else the source tree this binary was built from.
pub fn stdlib_dir() -> std::path::PathBuf {
    let installed = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|bin| bin.join("../share/bottle/stdlib")))
        .filter(|p| p.is_dir());
    installed
        .unwrap_or_else(|| std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/stdlib")))
}
