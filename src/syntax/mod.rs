//! The bottle language's syntax, a Nix dialect: the tokens (`grammar/bottle.pest`,
//! `lexer.rs`), the parser and AST, lexical scoping, and the formatter. Knows
//! nothing of evaluation.

pub mod ast;
pub mod format;
pub mod lexer;
pub mod parser;
pub mod scope;
pub mod span;

pub use parser::{parse, SyntaxError};
pub use span::{FileId, Source, SourceMap, Span};
