//! `bottle show-derivation`: a derivation as JSON, from a store path (its
//! record, with the output's content hash) or from a recipe (the whole
//! graph the recipe lowers to, keyed by store name, dependencies first).
use super::build::{load, RecipeArgs, StoreArg};
use clap::Args;
use std::process::ExitCode;

/// Print derivations as JSON, from a store path or a recipe.
#[derive(Args)]
#[command(
    after_help = "FILE may also be a store path, or a `-o` result link to one: then its record is printed.\n\nExamples:\n  bottle show-derivation examples/minimal.bottle\n  bottle show-derivation ./result"
)]
pub struct ShowDerivationArgs {
    #[command(flatten)]
    pub recipe: RecipeArgs,
    #[command(flatten)]
    pub store: StoreArg,
}

pub fn run(args: ShowDerivationArgs) -> miette::Result<ExitCode> {
    let store = args.store.open()?;
    let path = &args.recipe.file;
    if let Ok(name) = store.store_name_of(path) {
        let record = store.read_record(&name)?;
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({ name: record }))
                .expect("JSON serializes")
        );
        return Ok(ExitCode::SUCCESS);
    }
    let bottles = load(&args.recipe)?;
    let roots: Vec<_> = bottles.iter().map(crate::lower::lower).collect();
    let all: serde_json::Map<String, serde_json::Value> =
        crate::store::derivation::closure_of(&roots)
            .iter()
            .map(|d| (d.store_name(), d.to_record()))
            .collect();
    println!(
        "{}",
        serde_json::to_string_pretty(&all).expect("JSON serializes")
    );
    Ok(ExitCode::SUCCESS)
}
