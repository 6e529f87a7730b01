//! The bottle language's syntax, a Nix dialect: the grammar (`grammar/bottle.pest`),
//! the AST, and lexical scoping. Knows nothing of evaluation.

pub mod ast;
pub mod parser;
pub mod scope;
pub mod span;

pub use parser::{parse, SyntaxError};
pub use span::{FileId, Source, SourceMap, Span};
