//! Plain text files: `builtins.writeText`, `toTOML`, `toYAML`, and the
//! bottle's `files` given as strings. The file's derivations are the ones
//! its text mentions (its string context), so they are built first.

use crate::store::derivation::DerivationError;
use crate::store::{Derivation, Kind, Output, RenderError};
use serde_json::json;
use std::sync::Arc;

pub fn text_file(
    name: &str,
    text: &str,
    mentions: impl IntoIterator<Item = Arc<Derivation>>,
) -> Result<Arc<Derivation>, DerivationError> {
    Derivation::new(Kind::File, name, json!({ "text": text }), mentions)
}

pub fn render(drv: &Derivation) -> Result<Output, RenderError> {
    match drv.inputs()["text"].as_str() {
        Some(text) => Ok(Output::File(text.as_bytes().to_vec())),
        None => Err(RenderError("file inputs have no `text`".into())),
    }
}
