//! `bottle run`: realize a plan as a running, contained VM, with the user's
//! terminal attached to the agent; exits with the agent's exit code.
use crate::realize::vmm::Accel;
use crate::realize::{self, Plan, RunOptions};
use clap::Args;
use std::path::PathBuf;
use std::process::ExitCode;

/// Boot a bottle's VM, run its agent with your terminal attached, and exit
/// with the agent's exit code. The guest can reach only the declared
/// sidecars (at proxy.internal:<port>); everything stops on exit, Ctrl-C
/// (sent to bottle as a signal), SIGTERM or `bottle stop`.
#[derive(Args)]
pub struct RunArgs {
    /// The plan: a TOML spec (see docs/run.md).
    pub plan: PathBuf,
    /// The run's name for `bottle ps` / `bottle stop` (default: the plan's name).
    #[arg(long)]
    pub name: Option<String>,
    /// Force an accelerator instead of probing whether KVM works.
    #[arg(long, value_enum)]
    pub accel: Option<Accel>,
    /// Override the plan's rootfs (a directory or .tar).
    #[arg(long)]
    pub rootfs: Option<PathBuf>,
    /// Override the plan's number of cpus.
    #[arg(long)]
    pub cpus: Option<u32>,
    /// Override the plan's memory, in MiB.
    #[arg(long)]
    pub memory: Option<u32>,
    /// Write the boot image (initramfs) this run would boot to FILE and exit
    /// without starting anything (for benchmarks and debugging).
    #[arg(long, value_name = "FILE")]
    pub write_boot_image: Option<PathBuf>,
    /// The command to run instead of the plan's (after `--`).
    #[arg(last = true)]
    pub command: Vec<String>,
}

pub fn run(args: RunArgs) -> miette::Result<ExitCode> {
    if args.plan.extension().is_some_and(|e| e == "bottle") {
        return Err(miette::miette!(
            help = "give a plan spec (.toml) for now; see docs/run.md",
            "running a .bottle recipe needs `bottle build`, which is not wired to `bottle run` yet"
        ));
    }
    let mut plan = Plan::from_spec_file(&args.plan)?;
    if let Some(rootfs) = args.rootfs {
        plan.rootfs = rootfs;
    }
    if let Some(cpus) = args.cpus {
        plan.cpus = cpus;
    }
    if let Some(memory) = args.memory {
        plan.memory_mib = memory;
    }
    if !args.command.is_empty() {
        plan.command = args.command;
    }
    if let Some(path) = args.write_boot_image {
        realize::write_boot_image(&plan, &path)?;
        return Ok(ExitCode::SUCCESS);
    }
    let options = RunOptions {
        name: args.name,
        accel: args.accel,
    };
    let code = realize::run(&plan, &options)?;
    Ok(ExitCode::from(code.clamp(0, 255) as u8))
}
