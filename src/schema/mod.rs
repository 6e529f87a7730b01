//! The typed bottle.
