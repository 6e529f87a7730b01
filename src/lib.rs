//! bottle: run AI coding agents in microVMs whose only way out is a set of
//! host-side sidecars, described by a `.bottle` recipe in a Nix dialect.
//!
//! The modules follow the pipeline, in the order data flows:
//! `syntax` (parse) → `eval` (lazy evaluation) → `schema` (typed bottle) →
//! `lower` (derivations) → `store` (content-addressed outputs) →
//! `realize` (the running VM) with its `sidecar`s, and `supervise` (a person
//! in the loop). `diagnostics` turns every user-facing error into one report
//! shape, and `suggest` finds the "did you mean" for it; `cli` is one file
//! per subcommand.

// pest without `std` (see Cargo.toml) names `alloc` in the parser it derives.
extern crate alloc;

pub mod allocator;
pub mod cli;
pub mod diagnostics;
pub mod eval;
pub mod image;
pub mod lower;
pub mod lsp;
pub mod realize;
pub mod schema;
pub mod sidecar;
pub mod store;
pub mod suggest;
pub mod supervise;
pub mod syntax;
