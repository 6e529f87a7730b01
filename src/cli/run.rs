//! `bottle run`: realize a built bottle as a running, contained VM, with the
//! user's terminal attached to the agent; exits with the agent's exit code.
//! A recipe is built first; the run then reads only the store.
use crate::lower::bottle::{ManifestImage, MANIFEST};
use crate::realize::vmm::Accel;
use crate::realize::{self, Plan, RunOptions};
use crate::supervise::preflight::{confirm, Preflight};
use clap::Args;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

/// Boot a bottle's VM, run its agent with your terminal attached, and exit
/// with the agent's exit code. The guest can reach only the declared
/// sidecars (at proxy.internal:<port>); everything stops on exit, Ctrl-C
/// (sent to bottle as a signal), SIGTERM or `bottle stop`.
///
/// Exit codes: the agent's; 128+N if bottle was ended by signal N; 1 if a
/// part failed or the command could not start; 125 if the VM ended without
/// an exit status from bottle's init (the agent powered it off, or something
/// else wrote on the status port): a status bottle cannot trust is never 0.
#[derive(Args)]
#[command(
    after_help = "Examples:\n  bottle run examples/minimal.bottle\n  bottle run examples/fleet.bottle -A reviewer-3\n  bottle run result -- sh        (a built bottle, with another command)\n  bottle run result --verbose    (show what qemu, gvproxy and the guest are handed)"
)]
pub struct RunArgs {
    /// What to run: a recipe (.bottle, built first) or a built bottle (its
    /// store path or a `bottle build -o` link).
    pub target: PathBuf,
    /// Select one bottle of a recipe that has several.
    #[arg(short = 'A', long = "attr", value_name = "NAME")]
    pub attr: Option<String>,
    /// Add to the search path for `<...>` lookups: `DIR` or `PREFIX=DIR`.
    #[arg(short = 'I', long = "include", value_name = "PATH")]
    pub include: Vec<String>,
    #[command(flatten)]
    pub store: super::build::StoreArg,
    /// The run's name for `bottle ps` / `bottle stop` (default: the plan's name).
    #[arg(long)]
    pub name: Option<String>,
    /// Force an accelerator instead of probing whether KVM works.
    #[arg(long, value_enum)]
    pub accel: Option<Accel>,
    /// Boot this root file system (a directory or .tar) instead of the
    /// bottle's image: for bring-up and tests; the run then differs from
    /// what the store path names.
    #[arg(long, value_name = "DIR")]
    pub rootfs: Option<PathBuf>,
    /// Print what qemu, gvproxy and the guest are handed, and any stored
    /// setting the installed gvproxy cannot apply.
    #[arg(short, long)]
    pub verbose: bool,
    /// Write the boot image (initramfs) this run would boot to FILE and exit
    /// without starting anything (for benchmarks and debugging).
    #[arg(long, value_name = "FILE")]
    pub write_boot_image: Option<PathBuf>,
    /// Start without asking (the preflight question is asked only when
    /// stdin and stderr are a terminal).
    #[arg(short = 'y', long)]
    pub yes: bool,
    /// Print the plan (what `bottle run` would start) and start nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// With --dry-run: print the plan as JSON.
    #[arg(long, requires = "dry_run")]
    pub json: bool,
    /// The command to run instead of the plan's (after `--`).
    #[arg(last = true)]
    pub command: Vec<String>,
}

pub fn run(args: RunArgs) -> miette::Result<ExitCode> {
    let store = args.store.open()?;
    let from_recipe = !args.target.join(MANIFEST).is_file();
    let bottle_dir = if from_recipe {
        build_recipe(&args, &store)?
    } else {
        args.target.clone()
    };
    let mut plan = Plan::load(store.root(), &bottle_dir)?;
    if !args.command.is_empty() {
        plan.command = args.command.clone();
    }
    // The preflight: before anything starts, and from the stored bottle only.
    if args.dry_run || !args.yes {
        let files = crate::lower::bottle::Manifest::load(&bottle_dir)?.files;
        let preflight = Preflight::of(&plan, files.keys().cloned().collect())?;
        if args.dry_run {
            if args.json {
                let json = serde_json::to_string_pretty(&preflight).expect("plans serialize");
                println!("{json}");
            } else {
                print!("{}", preflight.text());
            }
            return Ok(ExitCode::SUCCESS);
        }
        let terminal = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
        if terminal && !confirm(&preflight) {
            eprintln!("bottle: not started");
            return Ok(ExitCode::from(super::EXIT_FAILURE));
        }
    }
    // A busybox image is assembled for this run and removed after it.
    let assembled = tempfile::Builder::new()
        .prefix("bottle-rootfs-")
        .tempdir()
        .map_err(|e| miette::miette!("cannot make a temporary directory: {e}"))?;
    let mut root_disk = None;
    let rootfs = match (&args.rootfs, &plan.image) {
        (Some(dir), _) => dir.clone(),
        (None, ManifestImage::Busybox) => {
            realize::image::busybox_rootfs(assembled.path(), &plan.user)?;
            let files = crate::lower::bottle::Manifest::load(&bottle_dir)?.files;
            realize::image::place_files(assembled.path(), store.root(), &files)?;
            assembled.path().to_path_buf()
        }
        // Built by bottle: attached read-only, the guest files are in it.
        (None, ManifestImage::Root(name)) => {
            root_disk = Some(store.root().join(name));
            assembled.path().to_path_buf()
        }
        (None, ManifestImage::Oci(reference)) => {
            return Err(realize::image::ImageError::Oci {
                reference: reference.clone(),
            }
            .into())
        }
    };
    if let Some(path) = &args.write_boot_image {
        realize::write_boot_image(&plan, &rootfs, path)?;
        return Ok(ExitCode::SUCCESS);
    }
    // While it runs, the bottle's store paths are a gc root.
    let root_name = format!("run-{}-{}", plan.name, std::process::id());
    store.add_root(
        &root_name,
        &bottle_dir.canonicalize().unwrap_or(bottle_dir.clone()),
    )?;
    let options = RunOptions {
        name: args.name,
        accel: args.accel,
        rootfs,
        root_disk,
        verbose: args.verbose,
        approved_file: from_recipe.then(|| {
            let dir = args.target.parent().unwrap_or(std::path::Path::new("."));
            std::path::absolute(dir)
                .unwrap_or_else(|_| dir.to_path_buf())
                .join(crate::supervise::APPROVED_FILE)
        }),
    };
    let outcome = realize::run(&plan, &options);
    let _ = store.remove_root(&root_name);
    let code = outcome?;
    Ok(ExitCode::from(code.clamp(0, 255) as u8))
}

/// Evaluate, check and build a recipe's bottle; its store path.
fn build_recipe(args: &RunArgs, store: &crate::store::Store) -> miette::Result<PathBuf> {
    let recipe = super::build::RecipeArgs {
        file: args.target.clone(),
        attr: args.attr.clone(),
        include: args.include.clone(),
    };
    let bottles = super::build::load(&recipe)?;
    let bottle = match bottles.as_slice() {
        [one] => one,
        many => {
            let names: Vec<&str> = many.iter().map(|b| b.name.as_str()).collect();
            return Err(miette::miette!(
                help = format!("choose one with `-A NAME`: {}", names.join(", ")),
                "{} holds {} bottles; `bottle run` runs one",
                args.target.display(),
                many.len()
            ));
        }
    };
    let root = crate::lower::lower(bottle);
    let report = store.build(std::slice::from_ref(&root), &crate::lower::render)?;
    let built = report.with(crate::store::Status::Built).count();
    let path = store.path_of(&root);
    eprintln!("bottle: {} ({built} built)", path.display());
    Ok(path)
}
