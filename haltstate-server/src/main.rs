//! The `haltstate` binary; arrives in full with the CLI.
fn main() {}
