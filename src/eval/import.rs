//! Paths, search paths and `import`: resolving file names against the
//! importing file, the `<bottle/...>` search path, the parsed-file cache and
//! import-cycle detection.

use super::io::normalize;
use super::{EvalError, EvalResult, Evaluator, Thunk, Value};
use crate::syntax::Span;
use std::path::{Path, PathBuf};
use std::rc::Rc;

impl Evaluator {
    /// The directory relative paths in `span`'s file resolve against.
    pub fn base_dir(&self, span: Span) -> PathBuf {
        if span.file.0 == u32::MAX {
            return std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/"));
        }
        self.sources.get(span.file).base_dir()
    }

    pub(super) fn path_literal(&mut self, text: &str, span: Span) -> EvalResult<Value> {
        // `~/x` is `$HOME/x`, as in Nix.
        if let Some(rest) = text.strip_prefix("~/") {
            let Some(home) = std::env::var_os("HOME").filter(|h| !h.is_empty()) else {
                return Err(EvalError::fatal(
                    format!("`{text}` is relative to the home directory, but HOME is not set"),
                    span,
                )
                .with_help("set HOME, or write the path relative to this file"));
            };
            return Ok(Value::Path(Rc::new(normalize(
                &PathBuf::from(home).join(rest),
            ))));
        }
        let path = if text.starts_with('/') {
            PathBuf::from(text)
        } else {
            self.base_dir(span).join(text)
        };
        Ok(Value::Path(Rc::new(normalize(&path))))
    }

    /// Resolve `<name/rest>` along the search path.
    pub fn search(&mut self, text: &str, span: Span) -> EvalResult<PathBuf> {
        let (head, rest) = text.split_once('/').unwrap_or((text, ""));
        for entry in &self.search_path {
            let candidate = if entry.prefix.is_empty() {
                entry.dir.join(text)
            } else if entry.prefix == head {
                if rest.is_empty() {
                    entry.dir.clone()
                } else {
                    entry.dir.join(rest)
                }
            } else {
                continue;
            };
            if self.io().exists(&candidate) {
                return Ok(normalize(&candidate));
            }
        }
        let dirs: Vec<String> = self
            .search_path
            .iter()
            .map(|e| format!("{}={}", e.prefix, e.dir.display()))
            .collect();
        // Nix throws this one: `builtins.tryEval <missing>` catches it.
        Err(EvalError::new(
            super::ErrorKind::Throw(format!("file `{text}` was not found in the search path")),
            span,
        )
        .with_help(if dirs.is_empty() {
            "add a directory with `-I DIR` or `-I prefix=DIR`".to_string()
        } else {
            format!(
                "searched {}; add more with `-I prefix=DIR`",
                dirs.join(", ")
            )
        }))
    }

    /// Coerce an argument of `import`/`readFile`/… to an absolute path.
    pub fn to_path(&mut self, v: &Value, span: Span) -> EvalResult<PathBuf> {
        let s = match v {
            Value::Path(p) => return Ok((**p).clone()),
            other => self.coerce_to_string(other, span, false)?,
        };
        if !s.text.starts_with('/') {
            return Err(EvalError::fatal(
                format!("string `{}` does not represent an absolute path", s.text),
                span,
            ));
        }
        Ok(normalize(Path::new(&*s.text)))
    }

    /// `import path`: evaluate a file once and share its value.
    pub fn import(&mut self, path: &Path, span: Span) -> EvalResult<Value> {
        let mut path = path.to_path_buf();
        if self.io().is_dir(&path) {
            path = path.join("default.nix");
            if !self.io().exists(&path) {
                path.set_file_name("default.bottle");
            }
        }
        if let Some(t) = self.files.get(&path).cloned() {
            if self.importing.contains(&path) {
                return Err(self.import_cycle(&path, span));
            }
            return self.force(&t);
        }
        let text = self.io().read_to_string(&path).map_err(|e| {
            let help = if e.kind() == std::io::ErrorKind::InvalidData {
                "recipes are UTF-8 text"
            } else if span.file.0 == u32::MAX {
                "check the file name"
            } else {
                "check the path; it is resolved relative to the file that imports it"
            };
            EvalError::fatal(format!("cannot read `{}`: {e}", path.display()), span).with_help(help)
        })?;
        let name = path.display().to_string();
        let (_, expr) = self.parse(name, Some(path.clone()), text.into())?;
        let env = self.globals().clone();
        let thunk = Thunk::new(expr, env);
        self.files.insert(path.clone(), thunk.clone());
        self.importing.push(path);
        let r = self.force(&thunk);
        self.importing.pop();
        r
    }

    fn import_cycle(&self, path: &Path, span: Span) -> EvalError {
        let start = self.importing.iter().position(|p| p == path).unwrap_or(0);
        let chain: Vec<String> = self.importing[start..]
            .iter()
            .chain(std::iter::once(&path.to_path_buf()))
            .map(|p| p.display().to_string())
            .collect();
        EvalError::fatal(format!("import cycle: {}", chain.join(" → ")), span)
            .with_help("a file's value cannot depend on importing itself")
    }
}
