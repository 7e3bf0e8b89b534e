//! `cargo haltstate-audit [PATH]`: the audit as a cargo subcommand (the same as `haltstate audit`).

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // Cargo runs a subcommand with its name as the first argument.
    let args = std::env::args_os()
        .enumerate()
        .filter_map(|(i, arg)| (i != 1 || arg != "haltstate-audit").then_some(arg));
    let options = haltstate_audit::cli::Options::parse_from(args);
    haltstate_audit::cli::run(&options)
}
