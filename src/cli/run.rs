//! `bottle run`: realize a plan as a running, contained VM, with the user's
//! terminal attached to the agent; exits with the agent's exit code.
use crate::lower::bottle::{Manifest, MANIFEST};
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
#[command(
    after_help = "Examples:\n  bottle run examples/minimal.bottle\n  bottle run examples/fleet.bottle -A reviewer-3\n  bottle run result -- sh        (a built bottle, with another command)\n  bottle run plan.toml           (a plan spec, see docs/run.md)"
)]
pub struct RunArgs {
    /// What to run: a recipe (.bottle), a built bottle (its store path or a
    /// `bottle build -o` link), or a plan spec (.toml).
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
    if args.target.extension().is_some_and(|e| e == "toml") {
        let plan = Plan::from_spec_file(&args.target)?;
        return realize_plan(plan, args);
    }
    let store = args.store.open()?;
    let bottle_dir = if args.target.join(MANIFEST).is_file() {
        args.target.clone()
    } else {
        build_recipe(&args, &store)?
    };
    let manifest = Manifest::load(&bottle_dir)?;
    // A busybox image is assembled for this run and removed after it.
    let assembled = tempfile::Builder::new()
        .prefix("bottle-rootfs-")
        .tempdir()
        .map_err(|e| miette::miette!("cannot make a temporary directory: {e}"))?;
    let mut root_disk = None;
    let rootfs = match (&args.rootfs, image_of(&manifest)?) {
        (Some(dir), _) => dir.clone(),
        (None, BottleImage::Busybox) => {
            realize::image::busybox_rootfs(assembled.path(), &manifest.agent.user)?;
            realize::image::place_files(assembled.path(), store.root(), &manifest.files)?;
            assembled.path().to_path_buf()
        }
        (None, BottleImage::Root(name)) => {
            root_disk = Some(store.root().join(name));
            assembled.path().to_path_buf()
        }
        (None, BottleImage::Oci(reference)) => {
            return Err(realize::image::ImageError::Oci { reference }.into())
        }
    };
    let mut plan = Plan::from_manifest(&manifest, store.root(), rootfs)?;
    plan.root_disk = root_disk;
    // While it runs, the bottle's store paths are a gc root.
    let root_name = format!("run-{}-{}", manifest.name, std::process::id());
    store.add_root(
        &root_name,
        &bottle_dir.canonicalize().unwrap_or(bottle_dir.clone()),
    )?;
    let outcome = realize_plan(plan, args);
    let _ = store.remove_root(&root_name);
    outcome
}

enum BottleImage {
    Busybox,
    /// An erofs root image in the store, by store name.
    Root(String),
    Oci(String),
}

fn image_of(manifest: &Manifest) -> miette::Result<BottleImage> {
    let image = &manifest.image;
    if image.get("busybox").and_then(|b| b.as_bool()) == Some(true) {
        return Ok(BottleImage::Busybox);
    }
    if let Some(name) = image.get("root").and_then(|r| r.as_str()) {
        return Ok(BottleImage::Root(name.to_string()));
    }
    if let Some(reference) = image.get("oci").and_then(|r| r.as_str()) {
        return Ok(BottleImage::Oci(reference.to_string()));
    }
    Err(realize::image::ImageError::Unknown {
        image: image.to_string(),
    }
    .into())
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

fn realize_plan(mut plan: Plan, args: RunArgs) -> miette::Result<ExitCode> {
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
