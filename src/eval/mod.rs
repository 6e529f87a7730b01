//! Lazy evaluation of parsed recipes into values.
