//! Nothing here: this crate exists for the dependency features its Cargo.toml turns on.
