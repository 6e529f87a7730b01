//! All file-system access of the evaluator goes through `EvalIO`, so tests can
//! run it without a disk and the purity rules live in one place.

use std::io;
use std::path::{Path, PathBuf};

pub trait EvalIO {
    fn read_to_string(&self, path: &Path) -> io::Result<String>;
    fn exists(&self, path: &Path) -> bool;
    fn is_dir(&self, path: &Path) -> bool;
    /// Entries of a directory with their kind ("regular", "directory", "symlink", "unknown").
    fn read_dir(&self, path: &Path) -> io::Result<Vec<(String, &'static str)>>;
}

/// The real file system.
pub struct StdIO;

impl EvalIO for StdIO {
    fn read_to_string(&self, path: &Path) -> io::Result<String> {
        std::fs::read_to_string(path)
    }

    fn exists(&self, path: &Path) -> bool {
        path.symlink_metadata().is_ok()
    }

    fn is_dir(&self, path: &Path) -> bool {
        path.is_dir()
    }

    fn read_dir(&self, path: &Path) -> io::Result<Vec<(String, &'static str)>> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(path)? {
            let entry = entry?;
            let ft = entry.file_type()?;
            let kind = if ft.is_symlink() {
                "symlink"
            } else if ft.is_dir() {
                "directory"
            } else if ft.is_file() {
                "regular"
            } else {
                "unknown"
            };
            out.push((entry.file_name().to_string_lossy().into_owned(), kind));
        }
        out.sort();
        Ok(out)
    }
}

/// Lexically normalise an absolute path: drop `.`, resolve `..`.
pub fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::from("/");
    for c in path.components() {
        match c {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::Normal(n) => out.push(n),
            _ => {}
        }
    }
    out
}
