//! The command line: one file per subcommand; this file only dispatches and
//! maps outcomes to exit codes (0 success, 1 the recipe or run failed, 2 usage).

mod doctor;
mod eval;
mod ps;
mod run;
mod stop;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Run AI coding agents in contained microVMs described by `.bottle` recipes.
#[derive(Parser)]
#[command(name = "bottle", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    Eval(eval::EvalArgs),
    Run(run::RunArgs),
    Ps(ps::PsArgs),
    Stop(stop::StopArgs),
    Doctor(doctor::DoctorArgs),
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
    let outcome = match cli.command {
        Command::Eval(args) => eval::run(args),
        Command::Run(args) => run::run(args),
        Command::Ps(args) => ps::run(args),
        Command::Stop(args) => stop::run(args),
        Command::Doctor(args) => doctor::run(args),
    };
    match outcome {
        Ok(code) => code,
        Err(report) => {
            crate::diagnostics::print(report);
            ExitCode::from(EXIT_FAILURE)
        }
    }
}
