//! `bottle build`: evaluate a recipe, check it, lower it to derivations and
//! realize them in the store; print the bottle's store path and which
//! derivations were built and which were already there.
use crate::schema::Bottle;
use crate::store::{Status, Store};
use clap::Args;
use rayon::prelude::*;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

/// Where the store is: `--store`, else `BOTTLE_STORE`, else `$XDG_DATA_HOME/bottle/store`.
#[derive(Args, Clone, Debug)]
pub struct StoreArg {
    /// The store directory [default: $XDG_DATA_HOME/bottle/store]
    #[arg(long = "store", env = "BOTTLE_STORE", value_name = "DIR")]
    pub store: Option<PathBuf>,
}

impl StoreArg {
    pub fn open(&self) -> miette::Result<Store> {
        let root = self.store.clone().unwrap_or_else(Store::default_root);
        Ok(Store::open(root)?)
    }
}

/// What to evaluate: a recipe file, a part of it, and where `<…>` looks.
#[derive(Args, Clone, Debug)]
pub struct RecipeArgs {
    /// The recipe file.
    pub file: PathBuf,
    /// Select one bottle (an attribute path) of a recipe that has several.
    #[arg(short = 'A', long = "attr", value_name = "NAME")]
    pub attr: Option<String>,
    /// Add to the search path for `<...>` lookups: `DIR` or `PREFIX=DIR`.
    #[arg(short = 'I', long = "include", value_name = "PATH")]
    pub include: Vec<String>,
}

/// Build a recipe's bottle(s) into the store.
///
/// Prints each bottle's store path on stdout; on stderr, which derivations
/// were built and which were already in the store.
#[derive(Args)]
#[command(
    after_help = "Examples:\n  bottle build examples/minimal.bottle -o result\n  bottle build examples/fleet.bottle -A reviewer-3 --json\n  bottle build examples/fleet.bottle --dry-run"
)]
pub struct BuildArgs {
    #[command(flatten)]
    pub recipe: RecipeArgs,
    /// Make LINK a symlink to the bottle's store path, and a gc root.
    #[arg(short = 'o', long = "out-link", value_name = "LINK")]
    pub out_link: Option<PathBuf>,
    /// Print the result as JSON: name, path, outputs, built and cached.
    #[arg(long)]
    pub json: bool,
    /// Show what would be built, build nothing.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub store: StoreArg,
}

/// Evaluate a recipe (selecting `-A`), check it into typed bottles, and pin
/// their remote inputs from `bottle.lock` (resolving and writing what it
/// lacks: the first build locks).
pub fn load(recipe: &RecipeArgs) -> miette::Result<Vec<Bottle>> {
    crate::image::lock::begin(&recipe.file, false)?;
    let mut bottles = load_unlocked(recipe)?;
    crate::image::pull::configure(&bottles);
    let applied = crate::image::lock::apply(&mut bottles, &recipe.file, false)?;
    report_lock(&applied);
    Ok(bottles)
}

/// Say on stderr what a lock gained or moved.
pub fn report_lock(applied: &crate::image::lock::Applied) {
    for change in &applied.changes {
        eprintln!("bottle: locked {change}");
    }
    if !applied.changes.is_empty() {
        eprintln!("bottle: wrote {}", applied.path.display());
    }
}

/// Evaluate a recipe (selecting `-A`), and check it into typed bottles.
pub fn load_unlocked(recipe: &RecipeArgs) -> miette::Result<Vec<Bottle>> {
    let search_path = super::search_path(&recipe.include);
    let (file, attr) = (recipe.file.clone(), recipe.attr.clone());
    crate::eval::run_with_stack(move || {
        let mut ev = crate::eval::Evaluator::new(search_path);
        let checked = check_recipe(&mut ev, &file, attr.as_deref());
        let result = match checked {
            Ok(Ok(bottles)) => Ok(bottles),
            Ok(Err(errors)) => Err(crate::schema::check_report(&ev.sources, errors)),
            Err(e) => Err(crate::diagnostics::eval_report(&ev.sources, &e)),
        };
        // The process ends soon after; freeing every value of a large fleet
        // one by one would only delay it.
        std::mem::forget(ev);
        result
    })
}

type Checked = Result<Vec<Bottle>, Vec<crate::schema::CheckError>>;

/// Evaluate and check; a set of bottles one bottle at a time.
fn check_recipe(
    ev: &mut crate::eval::Evaluator,
    file: &std::path::Path,
    attr: Option<&str>,
) -> crate::eval::EvalResult<Checked> {
    use crate::eval::Value;
    use crate::schema::{check_all, Node, SetChecker};
    let value = ev.eval_file(file)?;
    let mut value = ev.auto_call(value)?;
    if let Some(attr) = attr {
        value = ev.select_path(value, attr)?;
        value = ev.auto_call(value)?;
    }
    match &value {
        Value::Attrs(attrs) if !attrs.is_empty() && attrs.get("name").is_none() => {
            let mut set = SetChecker::default();
            for a in attrs.iter() {
                let v = ev.force(&a.value)?;
                let node = Node::from_value(ev, &v, a.span)?;
                set.add(&a.name, &node);
            }
            Ok(set.finish())
        }
        _ => {
            let node = Node::from_value(ev, &value, None)?;
            Ok(check_all(&node, None))
        }
    }
}

pub fn run(args: BuildArgs) -> miette::Result<ExitCode> {
    let bottles = load(&args.recipe)?;
    let store = args.store.open()?;
    let roots: Vec<Arc<crate::store::Derivation>> =
        bottles.par_iter().map(crate::lower::lower).collect();
    let report = if args.dry_run {
        store.plan(&roots)
    } else {
        store.build(&roots, &crate::lower::render)?
    };

    if !args.dry_run {
        if let Some(link) = &args.out_link {
            for root in &roots {
                let link = if roots.len() == 1 {
                    link.clone()
                } else {
                    suffixed(link, root.name())
                };
                store.link_result(&link, &store.path_of(root))?;
            }
        }
    }

    if args.json {
        let entries: Vec<serde_json::Value> = roots
            .iter()
            .map(|root| result_json(&store, root, &report))
            .collect();
        let value = if entries.len() == 1 {
            entries.into_iter().next().expect("one entry")
        } else {
            entries.into()
        };
        println!(
            "{}",
            serde_json::to_string_pretty(&value).expect("JSON values serialize")
        );
        return Ok(ExitCode::SUCCESS);
    }
    let (built, cached, missing) = (
        report.with(Status::Built).count(),
        report.with(Status::Cached).count(),
        report.with(Status::Missing).count(),
    );
    // A thousand-bottle fleet would drown the terminal: list each
    // derivation only for small graphs, the counts always.
    if report.derivations.len() <= 50 {
        use std::io::Write;
        let mut err = std::io::BufWriter::new(std::io::stderr().lock());
        for (drv, status) in &report.derivations {
            let word = match status {
                Status::Built => "built ",
                Status::Cached => "cached",
                Status::Missing => "would build",
            };
            let _ = writeln!(err, "{word} {}", drv.store_name());
        }
    }
    if args.dry_run {
        if bottles.len() <= 50 {
            for line in bottles.iter().flat_map(crate::lower::git_gate::describe) {
                eprintln!("{line}");
            }
        }
        eprintln!(
            "{missing} to build, {cached} already in {}",
            store.root().display()
        );
    } else {
        eprintln!(
            "{built} built, {cached} cached in {}",
            store.root().display()
        );
    }
    for root in &roots {
        println!("{}", store.path_of(root).display());
    }
    Ok(ExitCode::SUCCESS)
}

fn suffixed(link: &std::path::Path, name: &str) -> PathBuf {
    let mut s = link.as_os_str().to_owned();
    s.push(format!("-{name}"));
    PathBuf::from(s)
}

fn result_json(
    store: &Store,
    root: &Arc<crate::store::Derivation>,
    report: &crate::store::BuildReport,
) -> serde_json::Value {
    let closure: std::collections::HashSet<_> = root.closure().iter().map(|d| d.hash()).collect();
    let list = |status: Status| -> Vec<String> {
        report
            .with(status)
            .filter(|d| closure.contains(&d.hash()))
            .map(|d| store.path_of(d).display().to_string())
            .collect()
    };
    let outputs: serde_json::Map<String, serde_json::Value> = root.inputs()["outputs"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(link, name)| {
            (
                link.clone(),
                store
                    .root()
                    .join(name.as_str().unwrap_or_default())
                    .display()
                    .to_string()
                    .into(),
            )
        })
        .collect();
    serde_json::json!({
        "name": root.name(),
        "path": store.path_of(root).display().to_string(),
        "outputs": outputs,
        "built": list(Status::Built),
        "cached": list(Status::Cached),
        "missing": list(Status::Missing),
    })
}
