//! The bottle language's syntax: a Nix dialect. Parsing only; knows nothing of evaluation.
