//! `bottle lock`: pin a recipe's remote inputs named by tag or by name (OCI
//! tags, Debian packages, npm versions) in `bottle.lock` beside it; `--update` moves every
//! pin to what the registry or archive names now.
use super::build::RecipeArgs;
use clap::Args;
use std::process::ExitCode;

/// Write or update the recipe's `bottle.lock`.
///
/// Resolves what the lock lacks (an OCI tag's digest, a Debian package
/// set's closure with versions and hashes); with `--update`, everything.
/// Every build reads the lock, so a locked recipe builds the same root
/// until the lock is moved.
#[derive(Args)]
#[command(
    after_help = "Examples:\n  bottle lock examples/claude-code.bottle\n  bottle lock --update examples/claude-code.bottle"
)]
pub struct LockArgs {
    #[command(flatten)]
    pub recipe: RecipeArgs,
    /// Resolve every pin again (a re-pushed tag, a new Debian point release).
    #[arg(long)]
    pub update: bool,
}

pub fn run(args: LockArgs) -> miette::Result<ExitCode> {
    crate::image::lock::begin(&args.recipe.file, args.update)?;
    let mut bottles = super::build::load_unlocked(&args.recipe)?;
    crate::image::pull::configure(&bottles);
    let applied = crate::image::lock::apply(&mut bottles, &args.recipe.file, args.update)?;
    super::build::report_lock(&applied);
    if applied.changes.is_empty() {
        eprintln!("bottle: {} is up to date", applied.path.display());
    }
    Ok(ExitCode::SUCCESS)
}
