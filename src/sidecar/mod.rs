//! The host-side sidecars: the only doors out of a bottle. Each one listens on
//! a socket the realizer hands to gvproxy and enforces one policy rendered by
//! `bottle build`. `egress` is the HTTP(S) proxy every bottle has; `git_gate`
//! serves the agent's git remotes when the recipe names any.

pub mod egress;
pub mod git_gate;
