//! The command line both `haltstate audit` and `cargo haltstate-audit` take, and what they print and exit with.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::{Report, Status, audit, sarif};

/// How the report is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// A table and the summary line.
    Table,
    /// JSON: the summary and every finding.
    Json,
    /// SARIF 2.1.0, for code-scanning pages.
    Sarif,
}

/// What makes the audit exit non-zero (for CI).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FailOn {
    /// Never (report only).
    Never,
    /// Any uncovered sink.
    Uncovered,
    /// Any uncovered or unknown sink.
    Unknown,
}

/// Find the side effects no HaltState guard covers.
///
/// Example: haltstate audit . --fail-on uncovered
#[derive(Debug, Clone, clap::Parser)]
#[command(name = "haltstate-audit", version)]
pub struct Options {
    /// The workspace or crate (a directory with Cargo.toml, or a manifest).
    #[arg(default_value = ".")]
    pub path: PathBuf,
    /// How to print the report.
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
    /// Exit with status 1 when a sink is uncovered (or, with `unknown`, uncovered or unknown).
    #[arg(long, value_enum, default_value = "never")]
    pub fail_on: FailOn,
}

/// Whether `report` fails `fail_on`.
pub fn fails(report: &Report, fail_on: FailOn) -> bool {
    match fail_on {
        FailOn::Never => false,
        FailOn::Uncovered => report.count(Status::Uncovered) > 0,
        FailOn::Unknown => report.count(Status::Uncovered) + report.count(Status::Unknown) > 0,
    }
}

/// Runs the audit, prints the report on stdout: 0, 1 when it fails `--fail-on`, 2 when it could not be made.
pub fn run(options: &Options) -> ExitCode {
    let report = match audit(&options.path) {
        Ok(report) => report,
        Err(error) => {
            eprintln!("haltstate audit: {error}");
            return ExitCode::from(2);
        }
    };
    let printed = match options.format {
        Format::Table => report.table(),
        Format::Json => format!("{:#}\n", report.json()),
        Format::Sarif => format!("{:#}\n", sarif(&report)),
    };
    print!("{printed}");
    if fails(&report, options.fail_on) {
        eprintln!("haltstate audit: {}", report.summary());
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}
