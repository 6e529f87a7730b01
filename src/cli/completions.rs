//! `bottle completions SHELL` and `bottle man`: shell completion scripts and
//! man pages, made by clap's own generators from the same definitions that
//! parse the command line, so they never drift from it. Packagers run them
//! at install time (see docs/tools.md).

use clap::{Args, CommandFactory};
use std::path::PathBuf;
use std::process::ExitCode;

/// Print a shell completion script on standard output.
#[derive(Args)]
#[command(
    after_help = "Examples:\n  bottle completions bash > ~/.local/share/bash-completion/completions/bottle\n  bottle completions zsh > ~/.zfunc/_bottle\n  bottle completions fish > ~/.config/fish/completions/bottle.fish"
)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// Write man pages: `bottle(1)` and one `bottle-COMMAND(1)` per subcommand.
///
/// Without --out, prints `bottle(1)` on standard output
/// (`bottle man | man -l -`).
#[derive(Args)]
#[command(
    after_help = "Examples:\n  bottle man | man -l -\n  bottle man --out /usr/share/man/man1"
)]
pub struct ManArgs {
    /// Write every page into DIR (created if missing) as `NAME.1`.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

pub fn completions(args: CompletionsArgs) -> miette::Result<ExitCode> {
    let mut cmd = super::Cli::command();
    let mut out = std::io::stdout().lock();
    clap_complete::generate(args.shell, &mut cmd, "bottle", &mut out);
    Ok(ExitCode::SUCCESS)
}

pub fn man(args: ManArgs) -> miette::Result<ExitCode> {
    let mut cmd = super::Cli::command();
    let Some(dir) = args.out else {
        let mut out = std::io::stdout().lock();
        // A reader that stops early is not an error.
        let _ = clap_mangen::Man::new(cmd).render(&mut out);
        return Ok(ExitCode::SUCCESS);
    };
    let cannot = |what: &std::path::Path, e: std::io::Error| {
        miette::miette!(
            help = "give a directory you may write to",
            "cannot write `{}`: {e}",
            what.display()
        )
    };
    std::fs::create_dir_all(&dir).map_err(|e| cannot(&dir, e))?;
    let mut written = Vec::new();
    let mut write = |name: String, cmd: clap::Command| -> miette::Result<()> {
        let path = dir.join(format!("{name}.1"));
        let mut buf = Vec::new();
        clap_mangen::Man::new(cmd)
            .render(&mut buf)
            .map_err(|e| cannot(&path, e))?;
        std::fs::write(&path, buf).map_err(|e| cannot(&path, e))?;
        written.push(path);
        Ok(())
    };
    cmd.build();
    write("bottle".into(), cmd.clone())?;
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        // Each page names itself as its command line does: `bottle-run(1)`.
        let name = format!("bottle-{}", sub.get_name());
        let page = sub
            .clone()
            .display_name(name.clone())
            .version(env!("CARGO_PKG_VERSION"))
            .bin_name(format!("bottle {}", sub.get_name()));
        write(name, page)?;
    }
    for path in &written {
        println!("{}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}
