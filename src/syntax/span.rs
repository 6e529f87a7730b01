//! Source locations: which file, which bytes. Every AST node and every error
//! carries a `Span`; the `SourceMap` turns one back into text for a report.

use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Index of a file in the `SourceMap`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FileId(pub u32);

/// A byte range in one source file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Span {
    pub file: FileId,
    pub start: u32,
    pub end: u32,
}

impl Span {
    pub fn new(file: FileId, start: usize, end: usize) -> Span {
        Span {
            file,
            start: start as u32,
            end: end as u32,
        }
    }

    /// The smallest span covering both.
    pub fn to(self, other: Span) -> Span {
        Span {
            file: self.file,
            start: self.start.min(other.start),
            end: self.end.max(other.end),
        }
    }

    pub fn len(self) -> usize {
        (self.end - self.start) as usize
    }

    pub fn is_empty(self) -> bool {
        self.start == self.end
    }
}

/// One loaded source: its name for reports, its directory for relative paths.
#[derive(Debug)]
pub struct Source {
    pub name: String,
    pub path: Option<PathBuf>,
    pub text: Arc<str>,
}

impl Source {
    /// The directory relative paths in this source resolve against.
    pub fn base_dir(&self) -> PathBuf {
        match &self.path {
            Some(p) => p
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_else(|| PathBuf::from("/")),
            None => std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/")),
        }
    }

    /// 1-based line and column of a byte offset.
    pub fn line_col(&self, offset: u32) -> (usize, usize) {
        let before = &self.text[..(offset as usize).min(self.text.len())];
        let line = before.matches('\n').count() + 1;
        let col = before
            .rfind('\n')
            .map_or(before.len(), |nl| before.len() - nl - 1)
            + 1;
        (line, col)
    }
}

/// All sources seen in one evaluation.
#[derive(Debug, Default)]
pub struct SourceMap {
    sources: Vec<Arc<Source>>,
}

impl SourceMap {
    pub fn add(&mut self, name: String, path: Option<PathBuf>, text: Arc<str>) -> FileId {
        self.sources.push(Arc::new(Source { name, path, text }));
        FileId(self.sources.len() as u32 - 1)
    }

    pub fn get(&self, id: FileId) -> &Arc<Source> {
        &self.sources[id.0 as usize]
    }
}
