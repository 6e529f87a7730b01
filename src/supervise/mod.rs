//! A person in the loop. `preflight` shows what a run is about to do and
//! asks y/N before anything starts; `broker` holds the egress proxy's
//! requests on `approve` routes until a person answers; `control` is the
//! run's control socket (`supervise.sock` in the run directory, JSON lines)
//! that `bottle approve`, `bottle deny` and `bottle supervise` talk to.
//! Every answer is a line in the run's `supervise-events.jsonl`.
pub mod broker;
pub mod control;
pub mod preflight;

pub use broker::{Broker, Verdict};

/// The control socket's file name in the run directory.
pub const CONTROL_SOCKET: &str = "supervise.sock";
/// The approvals' event log in the run directory (JSON lines).
pub const EVENTS: &str = "supervise-events.jsonl";
/// The file beside a recipe that "allow always" writes routes into.
pub const APPROVED_FILE: &str = "approved.bottle";
